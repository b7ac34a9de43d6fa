package events_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/revline/revline/events"
)

// declaredCodes parses every non-test Go file of the module and returns the
// string value of each constant named Code... or code... with a literal
// value, with where it is declared.
func declaredCodes(t *testing.T) map[string]string {
	t.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") && !strings.HasPrefix(name.Name, "code") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue // an alias of another constant
					}
					value, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes[value] = path + ": " + name.Name
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// TestEveryCodeIsInTheCatalogue keeps the catalogue and the code base in
// step: a code declared anywhere is in the catalogue, and the catalogue
// lists no code that nothing declares.
func TestEveryCodeIsInTheCatalogue(t *testing.T) {
	declared := declaredCodes(t)
	if len(declared) < 40 {
		t.Fatalf("found %d code constants; the search is broken", len(declared))
	}
	for code, where := range declared {
		if _, ok := events.LookupCode(code); !ok {
			t.Errorf("%s declares code %q, which events/codes.go does not list", where, code)
		}
	}
	seen := map[string]bool{}
	for _, spec := range events.Catalogue() {
		if seen[spec.Code] {
			t.Errorf("code %q is listed twice", spec.Code)
		}
		seen[spec.Code] = true
		if _, ok := declared[spec.Code]; !ok {
			t.Errorf("the catalogue lists %q, which no Code constant declares", spec.Code)
		}
		if spec.Kind == events.KindNoOp && (spec.HTTPStatus != 200 || spec.ExitCode() != 0) {
			t.Errorf("no-op %q: HTTP %d, exit %d; want 200 and 0", spec.Code, spec.HTTPStatus, spec.ExitCode())
		}
		if spec.Kind != events.KindNoOp && (spec.HTTPStatus < 400 || spec.ExitCode() != 1) {
			t.Errorf("%s %q: HTTP %d, exit %d; want an error status and 1", spec.Kind, spec.Code, spec.HTTPStatus, spec.ExitCode())
		}
	}
}

// TestBusDocListsTheCatalogue checks docs/bus.md §7 against the catalogue:
// every code has a row with its HTTP status and exit code, and no row names
// a code the catalogue lacks.
func TestBusDocListsTheCatalogue(t *testing.T) {
	doc, err := os.ReadFile("../docs/bus.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## 7. Rejection codes")
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([^|]+) \\| (\\d+) \\| (\\d) \\|")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		rows[m[1]] = m[2:]
	}
	for _, spec := range events.Catalogue() {
		r, ok := rows[spec.Code]
		if !ok {
			t.Errorf("docs/bus.md §7 has no row for %q", spec.Code)
			continue
		}
		delete(rows, spec.Code)
		if r[1] != strconv.Itoa(spec.HTTPStatus) || r[2] != strconv.Itoa(spec.ExitCode()) {
			t.Errorf("docs/bus.md §7: %q has HTTP %s, exit %s; the catalogue says %d and %d", spec.Code, r[1], r[2], spec.HTTPStatus, spec.ExitCode())
		}
		if noop := strings.Contains(r[0], "noop"); noop != (spec.Kind == events.KindNoOp) {
			t.Errorf("docs/bus.md §7: %q is %q; the catalogue says %s", spec.Code, r[0], spec.Kind)
		}
	}
	for code := range rows {
		t.Errorf("docs/bus.md §7 lists %q, which the catalogue does not", code)
	}
}
