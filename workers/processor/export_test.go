package processor

import "github.com/revline/revline/aggregates"

// CachedState returns the state the processor holds of app, for tests.
func (p *Processor) CachedState(app string) aggregates.App {
	c := p.cache(app)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Clone()
}
