package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/queryapi"
)

// decodeBody reads r's JSON body into dst, refusing unknown fields,
// trailing data and bodies over MaxBodyBytes. An empty body leaves dst
// as it is when optional is set and is an error otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return badRequest("the request needs a JSON body")
		}
		return bodyError(err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		if err == nil {
			return badRequest("request body: want one JSON object, found more data after it")
		}
		return bodyError(err)
	}
	return nil
}

// bodyError says what is wrong with a body in terms of its fields, not of
// the Go types it is decoded into.
func bodyError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		bad      *badRequestError
	)
	switch {
	case errors.As(err, &bad):
		return err
	case errors.As(err, &tooLarge):
		return fmt.Errorf("request body is larger than %d bytes: %w", MaxBodyBytes, err)
	case errors.As(err, &syntax):
		return badRequest(fmt.Sprintf("request body is not valid JSON: %v (at byte %d)", syntax, syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is not valid JSON: it ends early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest(fmt.Sprintf("request body must be a JSON object, not %s", typ.Value))
		}
		return badRequest(fmt.Sprintf("request body: field %q must be %s, not %s", jsonPath(typ.Field), jsonKind(typ.Type), typ.Value))
	}
	return badRequest("request body: " + strings.TrimPrefix(err.Error(), "json: "))
}

// jsonPath is a field's path in the body as the client wrote it:
// encoding/json names the Go structs a field is embedded in too
// ("runtimeFields.min_concurrency"), and those names, unlike the API's
// snake_case fields, have upper-case letters.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	kept := parts[:0]
	for _, p := range parts {
		if strings.ToLower(p) == p {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ".")
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "of another type"
}

// seconds is a duration in a request body: an integer of seconds, or a
// string events.ParseSeconds reads ("300", "5m").
type seconds events.Seconds

// UnmarshalJSON implements json.Unmarshaler.
func (s *seconds) UnmarshalJSON(data []byte) error {
	text := string(data)
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(data, &text); err != nil {
			return err
		}
	}
	v, err := events.ParseSeconds(text)
	if err != nil {
		return badRequest("request body: " + err.Error())
	}
	*s = seconds(v)
	return nil
}

func (s *seconds) value() *events.Seconds {
	if s == nil {
		return nil
	}
	v := events.Seconds(*s)
	return &v
}

// runtimeFields are the runtime parameters of a deploy or scale body;
// absent fields are left as they are.
type runtimeFields struct {
	KeepAlive             *seconds `json:"keep_alive"`
	MinConcurrency        *int     `json:"min_concurrency"`
	MaxConcurrency        *int     `json:"max_concurrency"`
	ConcurrencyBuffer     *int     `json:"concurrency_buffer"`
	ConcurrencyBufferPerc *int     `json:"concurrency_buffer_perc"`
	ScalingDelay          *seconds `json:"scaling_delay"`
	RequestTimeout        *seconds `json:"request_timeout"`
}

func (f runtimeFields) overrides() events.RuntimeOverrides {
	return events.RuntimeOverrides{
		KeepAlive:             f.KeepAlive.value(),
		MinConcurrency:        f.MinConcurrency,
		MaxConcurrency:        f.MaxConcurrency,
		ConcurrencyBuffer:     f.ConcurrencyBuffer,
		ConcurrencyBufferPerc: f.ConcurrencyBufferPerc,
		ScalingDelay:          f.ScalingDelay.value(),
		RequestTimeout:        f.RequestTimeout.value(),
	}
}

// codeFields are the code parameters of a deploy or scale body; absent
// fields are left as they are.
type codeFields struct {
	MachineType     *string  `json:"machine_type"`
	MaxMultiplexing *int     `json:"max_multiplexing"`
	StartupTimeout  *seconds `json:"startup_timeout"`
}

func (f codeFields) overrides() events.CodeOverrides {
	return events.CodeOverrides{MachineType: f.MachineType, MaxMultiplexing: f.MaxMultiplexing, StartupTimeout: f.StartupTimeout.value()}
}

// controlFor returns a copy of the shared Control acting for the request's
// token.
func (a *api) controlFor(r *http.Request) (*control.Control, error) {
	return ActingAs(r.Context(), a.cfg.Control)
}

// minSequence reads the optional min_sequence query parameter: the answer
// then reflects at least that stream sequence (one a write returned).
func minSequence(r *http.Request) (uint64, error) {
	text := r.URL.Query().Get("min_sequence")
	if text == "" {
		return 0, nil
	}
	seq, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("min_sequence %q: want a stream sequence (a non-negative integer)", text))
	}
	return seq, nil
}

// listParams reads a list's query parameters: min_sequence, and limit
// and page_token, which select a page of the list.
func listParams(r *http.Request) (uint64, queryapi.PageRequest, error) {
	seq, err := minSequence(r)
	if err != nil {
		return 0, queryapi.PageRequest{}, err
	}
	q := r.URL.Query()
	page := queryapi.PageRequest{PageToken: q.Get("page_token")}
	if q.Has("limit") {
		text := q.Get("limit")
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > queryapi.MaxPageSize {
			return 0, page, badRequest(fmt.Sprintf("limit %q: want a whole number from 1 to %d (without it, pages hold %d items)", text, queryapi.MaxPageSize, queryapi.DefaultPageSize))
		}
		page.Limit = n
	}
	return seq, page, nil
}

// requestContext bounds a request: waitTimeout when the caller waits for a
// deploy or rollout to finish, requestTimeout otherwise.
func requestContext(r *http.Request, wait bool) (context.Context, context.CancelFunc) {
	if wait {
		return context.WithTimeout(r.Context(), waitTimeout)
	}
	return context.WithTimeout(r.Context(), requestTimeout)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// The API's own views always encode; this is a bug, not bad input.
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
