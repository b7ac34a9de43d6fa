package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
)

func testStore(t *testing.T) *auth.Store {
	t.Helper()
	s, _ := testStoreKV(t)
	return s
}

func TestRolesGrantWhatTheLesserOnesDo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role  auth.Role
		grant []auth.Permission
		deny  []auth.Permission
	}{
		{auth.RoleViewer, []auth.Permission{auth.Read}, []auth.Permission{auth.Operate, auth.Deploy, auth.Admin}},
		{auth.RoleOperator, []auth.Permission{auth.Read, auth.Operate}, []auth.Permission{auth.Deploy, auth.Admin}},
		{auth.RoleDeployer, []auth.Permission{auth.Read, auth.Operate, auth.Deploy}, []auth.Permission{auth.Admin}},
		{auth.RoleAdmin, []auth.Permission{auth.Read, auth.Operate, auth.Deploy, auth.Admin}, nil},
		{auth.Role("root"), nil, []auth.Permission{auth.Read}},
	} {
		for _, p := range tc.grant {
			if !tc.role.Allows(p) {
				t.Errorf("%s does not grant %s", tc.role, p)
			}
		}
		for _, p := range tc.deny {
			if tc.role.Allows(p) {
				t.Errorf("%s grants %s", tc.role, p)
			}
		}
	}
}

func TestAuthorizeChecksRoleAndAppGlob(t *testing.T) {
	t.Parallel()
	scoped := auth.Token{Name: "ci", Role: auth.RoleDeployer, Apps: "web-*"}
	all := auth.Token{Name: "ops", Role: auth.RoleOperator, Apps: auth.AllApps}
	var forbidden *auth.ForbiddenError
	for _, tc := range []struct {
		token auth.Token
		need  auth.Permission
		app   string
		ok    bool
	}{
		{scoped, auth.Deploy, "web-1", true},
		{scoped, auth.Deploy, "api", false},
		{scoped, auth.Read, "", false},
		{scoped, auth.Admin, "web-1", false},
		{all, auth.Operate, "api", true},
		{all, auth.Read, "", true},
		{all, auth.Deploy, "api", false},
	} {
		err := tc.token.Authorize(tc.need, tc.app)
		if (err == nil) != tc.ok || (err != nil && !errors.As(err, &forbidden)) {
			t.Errorf("%s (%s, %s) asking %s on %q: %v", tc.token.Name, tc.token.Role, tc.token.Apps, tc.need, tc.app, err)
		}
	}
}

func TestTokensCreateAuthenticateRevoke(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	now := time.Now()
	value, tok, err := s.Create(ctx, auth.NewToken{Name: "alice", Role: auth.RoleOperator, CreatedBy: "test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(value, "rvl_alice_") || tok.Apps != auth.AllApps || tok.Hash == "" || strings.Contains(tok.Hash, value) {
		t.Fatalf("created %q, %+v", value, tok)
	}
	got, err := s.Authenticate(ctx, value)
	if err != nil || got.Name != "alice" || got.Role != auth.RoleOperator || got.Actor() != "token:alice" {
		t.Fatalf("authenticate: %+v, %v", got, err)
	}
	// Another last hex digit: "0", unless it is one already (1 in 16).
	otherDigit := "0"
	if strings.HasSuffix(value, "0") {
		otherDigit = "1"
	}
	for name, bad := range map[string]string{
		"empty":         "",
		"no prefix":     strings.TrimPrefix(value, "rvl_"),
		"wrong secret":  value[:len(value)-1] + otherDigit,
		"short secret":  value[:len(value)-2],
		"not hex":       value[:len(value)-1] + "z",
		"unknown name":  strings.Replace(value, "alice", "bobby", 1),
		"name injected": "rvl_../x_" + value[len(value)-64:],
	} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("%s: the error quotes the value: %v", name, err)
		}
	}
	if _, _, err := s.Create(ctx, auth.NewToken{Name: "alice", Role: auth.RoleAdmin}, now); !errors.Is(err, auth.ErrNameTaken) {
		t.Errorf("second alice: %v", err)
	}
	for name, nt := range map[string]auth.NewToken{
		"bad name": {Name: "Alice", Role: auth.RoleViewer},
		"bad role": {Name: "carol", Role: "root"},
		"bad glob": {Name: "carol", Role: auth.RoleViewer, Apps: "web["},
		"dot glob": {Name: "carol", Role: auth.RoleViewer, Apps: "web.>"},
	} {
		if _, _, err := s.Create(ctx, nt, now); err == nil {
			t.Errorf("%s: created", name)
		}
	}

	revoked, err := s.Revoke(ctx, "alice", "test", now)
	if err != nil || !revoked.Revoked || revoked.RevokedBy != "test" {
		t.Fatalf("revoke: %+v, %v", revoked, err)
	}
	if _, err := s.Authenticate(ctx, value); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
	if again, err := s.Revoke(ctx, "alice", "someone else", now.Add(time.Hour)); err != nil || again.RevokedBy != "test" {
		t.Errorf("second revoke: %+v, %v; want the first revocation kept", again, err)
	}
	if _, err := s.Revoke(ctx, "nobody", "test", now); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoke nobody: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "alice" || !list[0].Revoked {
		t.Errorf("list: %+v, %v", list, err)
	}
}

func TestBootstrapMakesOneAdminToken(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "auth")
	path, made, err := auth.Bootstrap(ctx, s, dir, time.Now())
	if err != nil || !made {
		t.Fatalf("first bootstrap: %s, %v, %v", path, made, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", info, err)
	}
	value, _ := os.ReadFile(path)
	tok, err := s.Authenticate(ctx, strings.TrimSpace(string(value)))
	if err != nil || tok.Role != auth.RoleAdmin || tok.Name != auth.BootstrapName {
		t.Fatalf("bootstrap token: %+v, %v", tok, err)
	}
	// A restart, or another replica, makes none, even once it is revoked.
	if _, err := s.Revoke(ctx, auth.BootstrapName, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "auth")
	if _, made, err := auth.Bootstrap(ctx, s, other, time.Now()); err != nil || made {
		t.Fatalf("second bootstrap: made %v, %v", made, err)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Errorf("the second bootstrap left %v", entries)
	}
}

// An app glob that no app name can match (a literal that no app name has
// there) is refused: a token for no app is a mistake.
func TestAppGlobsMustBeAbleToMatchAnApp(t *testing.T) {
	t.Parallel()
	for _, glob := range []string{"web", "web-*", "*", "w?b", "[a-c]*", `web\-*`, "*_blue", "api[0-9]"} {
		if err := auth.ValidateAppGlob(glob); err != nil {
			t.Errorf("%q refused: %v", glob, err)
		}
	}
	for _, glob := range []string{"_webhooks", "_*", "Web-*", "-web", "web!", "*Blue", `\_*`} {
		if err := auth.ValidateAppGlob(glob); err == nil {
			t.Errorf("%q accepted; it matches no app name", glob)
		}
	}
}

// Only a server makes a token named like a server's own: an operator
// rotating a server's token must not find a look-alike.
func TestServerTokenNamesAreTheServers(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	if _, _, err := s.Create(t.Context(), auth.NewToken{Name: auth.ServerTokenPrefix + "12345678", Role: auth.RoleAdmin}, time.Now()); err == nil {
		t.Error("an admin made a token named like a server's")
	}
	if _, _, err := s.Create(t.Context(), auth.NewToken{Name: auth.ServerTokenPrefix + "12345678", Role: auth.RoleAdmin, Server: true}, time.Now()); err != nil {
		t.Errorf("a server's token: %v", err)
	}
}
