package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// colorScheme makes the tab prefer scheme ("light" or "dark").
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// TestAppearance checks that the versions page follows the light or dark
// preference, fits a phone's width without sideways scrolling, and loads
// nothing from anywhere but the server.
func TestAppearance(t *testing.T) {
	t.Parallel()
	s := serve(t)
	ctx := tab(t, s)
	s.deploy("web", runnerBin, "--message", "a message long enough to need more than one line on a phone's narrow screen")
	s.revline("deploy", "web", "--command", "echo model weights not found >&2; exit 1")

	background := `getComputedStyle(document.body).backgroundColor`
	do(t, ctx, "light page", colorScheme("light"), chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/web"))
	waitFor(t, ctx, "the page is live", `document.getElementById('conn').dataset.state === 'live'`)
	light := eval[string](t, ctx, background)
	do(t, ctx, "dark page", colorScheme("dark"))
	waitFor(t, ctx, "the page turns dark", fmt.Sprintf(`%s !== %q`, background, light))
	if lum := eval[float64](t, ctx, `(() => { const [r, g, b] = `+background+`.match(/\d+/g).map(Number); return (r + g + b) / 3 })()`); lum > 64 {
		t.Errorf("dark background %s has a mean channel of %.0f; want a dark color", eval[string](t, ctx, background), lum)
	}

	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	waitFor(t, ctx, "the page fits the phone's width", `document.documentElement.scrollWidth <= window.innerWidth`)
	if hidden := eval[bool](t, ctx, `getComputedStyle(document.querySelector('#revisions thead')).display === 'none'`); !hidden {
		t.Error("at a phone's width the versions table keeps its header row; want one card per revision")
	}

	if foreign := eval[[]string](t, ctx, `performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))`); len(foreign) > 0 {
		t.Errorf("the page loaded %v from elsewhere", foreign)
	}
}

// TestScreenshots saves the README's screenshots of the main pages into
// the directory $REVLINE_SCREENSHOTS names (docs/screenshots):
//
//	REVLINE_SCREENSHOTS=$PWD/docs/screenshots go test -run TestScreenshots ./cmd/revline/internal/dashboard/
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("REVLINE_SCREENSHOTS")
	if dir == "" {
		t.Skip("set REVLINE_SCREENSHOTS to a directory to save screenshots of the dashboard")
	}
	s := serve(t)
	ctx := tab(t, s)
	s.deploy("my-model", "exec "+runnerBin, "--message", "first version")
	rev2, _ := s.deploy("my-model", "exec "+runnerBin, "--machine-type", "GPU-H100", "--message", "second version")
	s.revline("deploy", "my-model", "--command", "echo model weights not found >&2; exit 1", "--message", "broken")
	s.revline("apps", "scale", "my-model", "--min-concurrency", "1", "--keep-alive", "5m")
	s.deploy("my-model", "exec "+runnerBin, "--machine-type", "GPU-A100", "--message", "smaller GPU")
	s.deploy("embeddings", "exec "+runnerBin, "--message", "initial")

	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	laptop := chromedp.EmulateViewport(1280, 720)
	do(t, ctx, "apps page", laptop, chromedp.Navigate(s.addrs.HTTPURL+"/"))
	waitFor(t, ctx, "live", `document.getElementById('conn').dataset.state === 'live' && document.querySelectorAll('#apps tbody tr').length === 2`)
	shoot("apps.png")

	do(t, ctx, "versions page", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model"))
	waitFor(t, ctx, "live", `document.getElementById('conn').dataset.state === 'live'`)
	shoot("versions.png")

	click(t, ctx, `button[data-action=rollback][data-revision="`+rev2+`"]`)
	waitFor(t, ctx, "the preview", `!!document.querySelector('#preview-params')`)
	do(t, ctx, "reason", chromedp.SendKeys(chromedp.ID("confirm-reason"), "A100 runs out of memory"))
	shoot("rollback.png")
	click(t, ctx, "#confirm-cancel")

	do(t, ctx, "runners page", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model/runners"))
	waitFor(t, ctx, "runners", `document.querySelectorAll('#runners tbody tr').length > 0`)
	shoot("runners.png")

	do(t, ctx, "history page", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model/history"))
	waitFor(t, ctx, "history", `document.querySelectorAll('#history li').length > 0`)
	shoot("history.png")

	do(t, ctx, "dark versions page", colorScheme("dark"), chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model"))
	waitFor(t, ctx, "live", `document.getElementById('conn').dataset.state === 'live'`)
	shoot("versions-dark.png")

	do(t, ctx, "phone versions page", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model"))
	waitFor(t, ctx, "live", `document.getElementById('conn').dataset.state === 'live'`)
	shoot("versions-phone.png")
}
