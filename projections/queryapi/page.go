package queryapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/revline/revline/projections"
)

// Page sizes of the list queries (apps, revisions, runners).
const (
	// DefaultPageSize is the page size of a request that gives no limit.
	DefaultPageSize = 100
	// MaxPageSize is the largest limit a request may give.
	MaxPageSize = 1000
)

// PageRequest selects one page of a list query.
type PageRequest struct {
	// Limit is the most items the page may hold: 1 to MaxPageSize, or 0
	// for DefaultPageSize.
	Limit int
	// PageToken is the NextPageToken of the previous page; "" asks for the
	// first page.
	PageToken string
	// MaxBytes, if positive, bounds the JSON encoding of the whole page
	// (a Page value): the page then ends earlier, with a NextPageToken, and
	// a single item larger than that is a CodeReplyTooLarge error. The
	// query service sets it from its connection's max payload; it is not
	// sent over NATS.
	MaxBytes int
	// Visible, if set, keeps in the apps list only the apps it accepts
	// (the others are not there at all, page after page): the query
	// service sets it to the apps the query's token may view. It is not
	// sent over NATS.
	Visible func(app string) bool
}

// Page is one page of a list query, in the list's order.
type Page[T any] struct {
	Items []T `json:"items"`
	// NextPageToken asks for the rest of the list (pass it back as
	// PageRequest.PageToken); it is empty on the last page, and only then.
	// A page may hold fewer items than the limit even when more follow.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// All reads a list page after page, following NextPageToken, and returns
// its items in order: all of them when max is 0, else at most max.
func All[T any](ctx context.Context, max int, list func(context.Context, PageRequest) (Page[T], error)) ([]T, error) {
	var out []T
	req := PageRequest{Limit: MaxPageSize}
	for {
		if max > 0 {
			req.Limit = min(MaxPageSize, max-len(out))
		}
		page, err := list(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextPageToken == "" || (max > 0 && len(out) >= max) {
			break
		}
		// A server that does not move on would keep us here forever.
		if len(page.Items) == 0 || page.NextPageToken == req.PageToken {
			return nil, errors.New("list query: the server answered a page that does not move through the list")
		}
		req.PageToken = page.NextPageToken
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// position is where an item sits in its list: lists are sorted by a
// number (revisions), else by a time, then by an id.
type position struct {
	n  uint64
	at time.Time
	id string
}

// listOrder is how one list query sorts its items, so that a page token
// can name a position in it that stays valid while the list changes.
type listOrder[T any] struct {
	// name is the list's endpoint, written in its page tokens.
	name string
	// descending lists the greatest positions first.
	descending bool
	// numbered lists by a number (position.n) first: a token without
	// one comes from a server that listed by time.
	numbered bool
	position func(T) position
	// describe names an item in an error.
	describe func(T) string
}

// The list queries' orders; each must be the order the model returns the
// list in (projections.RevisionHistory's Apps, Revisions and Runners).
var (
	appsOrder = listOrder[projections.AppView]{
		name:     EndpointApps,
		position: func(a projections.AppView) position { return position{id: a.Name} },
		describe: func(a projections.AppView) string { return fmt.Sprintf("app %q", a.Name) },
	}
	revisionsOrder = listOrder[projections.RevisionView]{
		name:       EndpointRevisions,
		descending: true, // newest first
		numbered:   true,
		position:   func(r projections.RevisionView) position { return position{n: r.Number, id: r.RevisionID} },
		describe:   func(r projections.RevisionView) string { return "revision " + r.RevisionID },
	}
	runnersOrder = listOrder[projections.RunnerView]{
		name:     EndpointRunners,
		position: func(r projections.RunnerView) position { return position{at: r.StartedAt, id: r.RunnerID} },
		describe: func(r projections.RunnerView) string { return "runner " + r.RunnerID },
	}
)

// compare orders positions a and b as the list does.
func (o listOrder[T]) compare(a, b position) int {
	c := cmp.Compare(a.n, b.n)
	if c == 0 {
		c = a.at.Compare(b.at)
	}
	if c == 0 {
		c = cmp.Compare(a.id, b.id)
	}
	if o.descending {
		return -c
	}
	return c
}

// pageToken is what a page token says, before its encoding: which list,
// the position of the last item given, and the model's checkpoint then,
// so that the next page is never answered from an older model (another
// replica's).
type pageToken struct {
	List     string    `json:"l"`
	App      string    `json:"a,omitempty"`
	N        uint64    `json:"n,omitempty"`
	At       time.Time `json:"t,omitzero"`
	ID       string    `json:"i"`
	Sequence uint64    `json:"s,omitempty"`
}

func (t pageToken) encode() (string, error) {
	data, err := json.Marshal(t)
	if err != nil { // only a time outside years 0 to 9999
		return "", fmt.Errorf("encode the page token after %s: %w", t.ID, err)
	}
	return base64.RawURLEncoding.EncodeToString(data), nil
}

// pageCursor is a checked PageRequest: the page size and where the page
// starts.
type pageCursor struct {
	limit    int
	maxBytes int
	// after is the position the page starts after; nil for the first page.
	after *pageToken
}

// minSequence is the sequence the model must have reached to answer the
// page: the caller's, or the one the previous page was read at.
func (c pageCursor) minSequence(seq uint64) uint64 {
	if c.after != nil {
		return max(seq, c.after.Sequence)
	}
	return seq
}

// cursor checks req for list o of app ("" for the apps list). Errors are
// CodeBadRequest.
func (o listOrder[T]) cursor(app string, req PageRequest) (pageCursor, error) {
	c := pageCursor{limit: req.Limit, maxBytes: req.MaxBytes}
	switch {
	case req.Limit == 0:
		c.limit = DefaultPageSize
	case req.Limit < 0 || req.Limit > MaxPageSize:
		return c, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("limit %d is out of range: give 1 to %d, or none for %d", req.Limit, MaxPageSize, DefaultPageSize)}
	}
	if req.PageToken == "" {
		return c, nil
	}
	bad := func(why string) (pageCursor, error) {
		return c, &Error{Code: CodeBadRequest, Message: "page_token is not one this list gave out (" + why + "): pass next_page_token from the previous page as it is, or none for the first page"}
	}
	data, err := base64.RawURLEncoding.DecodeString(req.PageToken)
	if err != nil {
		return bad("not base64url")
	}
	var t pageToken
	if err := json.Unmarshal(data, &t); err != nil || t.ID == "" {
		return bad("its content is not a list position")
	}
	if t.List != o.name || t.App != app {
		return bad(fmt.Sprintf("it belongs to another list: %s of %q", t.List, t.App))
	}
	if o.numbered && t.N == 0 {
		return bad("it comes from an older server, which listed revisions by time")
	}
	c.after = &t
	return c, nil
}

// page cuts the page c asks for out of items, which are the whole list in
// o's order; seq is the model's checkpoint when items were read.
func (o listOrder[T]) page(app string, items []T, c pageCursor, seq uint64) (Page[T], error) {
	start := 0
	if c.after != nil {
		after := position{c.after.N, c.after.At, c.after.ID}
		start = sort.Search(len(items), func(i int) bool { return o.compare(o.position(items[i]), after) > 0 })
	}
	end := min(start+c.limit, len(items))
	page := Page[T]{Items: items[start:end:end]}
	more := end < len(items)
	tokenAfter := func(item T) (string, error) {
		p := o.position(item)
		return pageToken{List: o.name, App: app, N: p.n, At: p.at, ID: p.id, Sequence: seq}.encode()
	}
	if c.maxBytes > 0 {
		n, err := o.fit(page.Items, more, c.maxBytes, tokenAfter)
		if err != nil {
			return Page[T]{}, err
		}
		more = more || n < len(page.Items)
		page.Items = page.Items[:n]
	}
	if page.Items == nil {
		page.Items = []T{}
	}
	if more {
		token, err := tokenAfter(page.Items[len(page.Items)-1])
		if err != nil {
			return Page[T]{}, err
		}
		page.NextPageToken = token
	}
	return page, nil
}

// pageOverhead bounds the bytes of a page's JSON encoding besides its
// items, their commas and its token.
var pageOverhead = len(`{"items":[],"next_page_token":""}`)

// fit returns how many of items fit in a page of at most maxBytes bytes of
// JSON, next page token included (more says whether the list goes on
// after items). The first item must fit: if it does not, fit returns a
// CodeReplyTooLarge error.
func (o listOrder[T]) fit(items []T, more bool, maxBytes int, tokenAfter func(T) (string, error)) (int, error) {
	size := pageOverhead
	for i, item := range items {
		data, err := json.Marshal(item)
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", o.describe(item), err)
		}
		size += len(data) + 1
		total := size
		if more || i < len(items)-1 {
			token, err := tokenAfter(item)
			if err != nil {
				return 0, err
			}
			total += len(token)
		}
		if total > maxBytes {
			if i == 0 {
				return 0, &Error{Code: CodeReplyTooLarge, Message: fmt.Sprintf("%s alone is %d bytes of JSON, more than one reply may hold (%d bytes)", o.describe(item), len(data), maxBytes)}
			}
			return i, nil
		}
	}
	return len(items), nil
}
