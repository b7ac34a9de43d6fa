//go:build linux

package process

// DisableCgroups makes s start runners without a cgroup: it then finds their
// processes through /proc only, as where cgroups are not available.
func DisableCgroups(s *Supervisor) { s.disableCgroups() }

// UsesCgroups reports whether s starts runners in cgroups of their own.
func UsesCgroups(s *Supervisor) bool { return s.usesCgroups() }

// CgroupOf returns the directory of p's cgroup, or "".
func CgroupOf(p *Process) string { return p.cgroup }
