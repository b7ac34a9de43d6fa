// Revline dashboard login: sends the pasted token once; the server answers
// with a session cookie (HttpOnly) and the page goes where it was asked to.
"use strict";
(function () {
  const form = document.getElementById("login-form");
  if (!form) return;
  const main = form.closest("main");
  const input = document.getElementById("login-token");
  const error = document.getElementById("login-error");
  const submit = document.getElementById("login-submit");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const resp = await fetch("/ui/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: input.value }),
      });
      let answer = {};
      try { answer = await resp.json(); } catch (_) { /* not JSON: use the status */ }
      if (!resp.ok) throw new Error(answer.error || "login failed: " + resp.status);
      input.value = "";
      location.assign(main.dataset.next || "/");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });
})();
