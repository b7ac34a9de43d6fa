package events_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/revline/revline/events"
)

// asyncAPIPath is the bus contract in AsyncAPI 3.0 (docs/bus.md links it).
const asyncAPIPath = "../docs/asyncapi.yaml"

// asyncAPIDoc is the parsed document with a resolver for its local $refs.
type asyncAPIDoc struct {
	root map[string]any
}

func loadAsyncAPI(t *testing.T) asyncAPIDoc {
	t.Helper()
	data, err := os.ReadFile(asyncAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatalf("%s: %v", asyncAPIPath, err)
	}
	return asyncAPIDoc{root: root}
}

// resolve follows a local reference "#/a/b" (JSON pointer, ~0 and ~1
// escapes) and reports whether it names something.
func (d asyncAPIDoc) resolve(ref string) (any, bool) {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var node any = d.root
	for _, token := range strings.Split(pointer, "/") {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[token]; !ok {
			return nil, false
		}
	}
	return node, true
}

// deref resolves node while it is a {$ref: ...} object.
func (d asyncAPIDoc) deref(t *testing.T, node any) map[string]any {
	t.Helper()
	for range 10 {
		m, ok := node.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", node)
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return m
		}
		if node, ok = d.resolve(ref); !ok {
			t.Fatalf("$ref %q does not resolve", ref)
		}
	}
	t.Fatal("$ref chain longer than 10")
	return nil
}

func object(t *testing.T, m map[string]any, key, where string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	if !ok || len(v) == 0 {
		t.Fatalf("%s: %q is missing or not a non-empty object", where, key)
	}
	return v
}

// TestAsyncAPIIsAsyncAPI3 checks the document's structure: the version, the
// info, channels with addresses and messages, operations on channels, and
// every $ref anywhere resolving inside the document.
func TestAsyncAPIIsAsyncAPI3(t *testing.T) {
	d := loadAsyncAPI(t)
	if v, _ := d.root["asyncapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("asyncapi = %q, want 3.x", v)
	}
	info := object(t, d.root, "info", "document")
	for _, key := range []string{"title", "version"} {
		if s, _ := info[key].(string); s == "" {
			t.Errorf("info.%s is missing", key)
		}
	}
	for name, ch := range object(t, d.root, "channels", "document") {
		channel := d.deref(t, ch)
		if a, _ := channel["address"].(string); a == "" {
			t.Errorf("channel %s has no address", name)
		}
		for msgName, msg := range object(t, channel, "messages", "channel "+name) {
			if _, ok := d.deref(t, msg)["payload"]; !ok {
				t.Errorf("channel %s message %s has no payload", name, msgName)
			}
		}
	}
	for name, op := range object(t, d.root, "operations", "document") {
		operation := d.deref(t, op)
		if a := operation["action"]; a != "send" && a != "receive" {
			t.Errorf("operation %s: action %v, want send or receive", name, a)
		}
		if _, ok := operation["channel"].(map[string]any)["$ref"]; !ok {
			t.Errorf("operation %s has no channel $ref", name)
		}
	}
	components := object(t, d.root, "components", "document")
	object(t, components, "messages", "components")
	object(t, components, "schemas", "components")
	var refs int
	var walk func(node any, path string)
	walk = func(node any, path string) {
		switch n := node.(type) {
		case map[string]any:
			if ref, ok := n["$ref"]; ok {
				refs++
				s, _ := ref.(string)
				if _, ok := d.resolve(s); !ok {
					t.Errorf("%s: $ref %v does not resolve inside the document", path, ref)
				}
			}
			for k, v := range n {
				walk(v, path+"/"+k)
			}
		case []any:
			for i, v := range n {
				walk(v, path+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(d.root, "#")
	if refs == 0 {
		t.Error("no $ref at all: the walk found nothing to check")
	}
}

// TestAsyncAPIDescribesEveryType checks that each registered command and
// event type has a message on its channel whose payload schema names
// exactly the Go type's wire fields, nested structures included.
func TestAsyncAPIDescribesEveryType(t *testing.T) {
	d := loadAsyncAPI(t)
	reg := events.NewRegistry()
	emptyMap := []byte{0x80}
	for _, name := range reg.CommandTypes() {
		cmd, err := reg.DecodeCommand(name, "", emptyMap)
		if err != nil {
			t.Fatal(err)
		}
		d.checkMessage(t, "commands", name, reflect.TypeOf(cmd))
	}
	for _, name := range reg.EventTypes() {
		ev, err := reg.DecodeEvent(name, emptyMap)
		if err != nil {
			t.Fatal(err)
		}
		d.checkMessage(t, "events", name, reflect.TypeOf(ev))
	}
	d.checkMessage(t, "outcomes", "outcome", reflect.TypeFor[events.Outcome]())
}

func (d asyncAPIDoc) checkMessage(t *testing.T, channel, name string, typ reflect.Type) {
	t.Helper()
	ch, ok := d.resolve("#/channels/" + channel + "/messages")
	if !ok {
		t.Fatalf("no channel %s with messages", channel)
	}
	for _, msg := range ch.(map[string]any) {
		m := d.deref(t, msg)
		if m["name"] == name {
			d.checkSchema(t, m["payload"], typ, channel+" "+name)
			return
		}
	}
	t.Errorf("%s: no message named %q on channel %s (%s is registered)", asyncAPIPath, name, channel, typ)
}

// checkSchema compares an object schema's properties with typ's msgpack
// field names, both ways, and recurses into struct fields.
func (d asyncAPIDoc) checkSchema(t *testing.T, node any, typ reflect.Type, where string) {
	t.Helper()
	schema := d.deref(t, node)
	props, _ := schema["properties"].(map[string]any)
	var fields []string
	for f := range typ.Fields() {
		wire, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
		if !f.IsExported() || wire == "-" {
			continue
		}
		if wire == "" {
			wire = f.Name
		}
		fields = append(fields, wire)
		prop, ok := props[wire]
		if !ok {
			t.Errorf("%s: %s: the payload schema has no property %q (field %s.%s)", asyncAPIPath, where, wire, typ.Name(), f.Name)
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			d.checkSchema(t, prop, ft, where+"."+wire)
		}
	}
	for prop := range props {
		if !slices.Contains(fields, prop) {
			t.Errorf("%s: %s: property %q is not a field of %s", asyncAPIPath, where, prop, typ)
		}
	}
}

// TestAsyncAPIDescribesEveryHeader checks that each Header* constant of
// events/names.go is a property of one of the document's header schemas.
func TestAsyncAPIDescribesEveryHeader(t *testing.T) {
	d := loadAsyncAPI(t)
	described := map[string]bool{}
	for name, schema := range d.root["components"].(map[string]any)["schemas"].(map[string]any) {
		if strings.HasSuffix(name, "Headers") {
			props, _ := d.deref(t, schema)["properties"].(map[string]any)
			for header := range props {
				described[header] = true
			}
		}
	}
	file, err := parser.ParseFile(token.NewFileSet(), "names.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var headers int
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, ident := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !strings.HasPrefix(ident.Name, "Header") || !ok {
					continue
				}
				headers++
				value, _ := strconv.Unquote(lit.Value)
				if !described[value] {
					t.Errorf("%s: header %s (%q) is in no header schema", asyncAPIPath, ident.Name, value)
				}
			}
		}
	}
	if headers == 0 {
		t.Fatal("found no Header constant in names.go")
	}
}
