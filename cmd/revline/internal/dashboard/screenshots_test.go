package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

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
	ctx := tab(t)
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

	dark := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	})
	do(t, ctx, "dark versions page", dark, chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model"))
	waitFor(t, ctx, "live", `document.getElementById('conn').dataset.state === 'live'`)
	shoot("versions-dark.png")

	do(t, ctx, "phone versions page", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/my-model"))
	waitFor(t, ctx, "live", `document.getElementById('conn').dataset.state === 'live'`)
	shoot("versions-phone.png")
}
