// Package projections holds Revline's read models: views folded from the
// event log that answer queries without touching the aggregate.
//
// RevisionHistory serves `apps list`, `apps list-rev` and `apps runners`.
// It keeps a checkpoint (the stream sequence of the last event it saw), is
// idempotent, and can be rebuilt from sequence 1 with Rebuild; a rebuilt
// model equals the live one. Run keeps a model up to date by following a
// store; WaitFor lets a client read its own write. Replay rebuilds a
// running model from the log into a new generation while the old one
// keeps serving, and switches to it atomically, reporting what differed.
package projections
