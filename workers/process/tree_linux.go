package process

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// trackInterval is how often the supervisor looks for its runners'
	// processes while they run: a descendant that leaves the runner's tree
	// (its parent exits) and clears its environment between two looks is
	// found only through the runner's cgroup.
	trackInterval = 250 * time.Millisecond
	// freezeRounds bounds the rounds of SIGSTOP that precede SIGKILL.
	freezeRounds = 16
	// zombieWait bounds the wait for a runner's zombies to become reapable.
	zombieWait = 5 * time.Second
	// cgroupRemoveWait bounds the wait for a killed cgroup to empty.
	cgroupRemoveWait = 2 * time.Second
)

// platformState is what a Supervisor keeps on Linux to find the processes of
// its runners.
type platformState struct {
	mu         sync.Mutex
	cgroupBase string               // directory of the runners' cgroups; "" for none
	runners    map[*Process]bool    // runners started and not yet forgotten
	owner      map[procKey]*Process // every process known to belong to a runner
	markers    map[procKey]string   // REVLINE_RUNNER_ID of processes looked at
	tracking   bool                 // the tracking goroutine runs
	// zombieDeadline is when treeAlive stops waiting for a runner's zombies.
	zombieDeadline map[*Process]time.Time
}

// initPlatform makes the process a child subreaper and decides whether
// runners get cgroups.
func (s *Supervisor) initPlatform() {
	s.plat.runners = make(map[*Process]bool)
	s.plat.owner = make(map[procKey]*Process)
	s.plat.markers = make(map[procKey]string)
	s.plat.zombieDeadline = make(map[*Process]time.Time)
	if err := becomeSubreaper(); err != nil {
		s.log.Warn("runners' orphaned descendants will be reparented to init, not to the supervisor", "err", err)
	}
	base, err := cgroupBase()
	if err != nil {
		s.log.Info("runners get no cgroup; their processes are found through /proc", "reason", err)
		return
	}
	s.plat.cgroupBase = base
}

// usesCgroups reports whether new runners get a cgroup.
func (s *Supervisor) usesCgroups() bool {
	s.plat.mu.Lock()
	defer s.plat.mu.Unlock()
	return s.plat.cgroupBase != ""
}

// disableCgroups stops giving new runners a cgroup.
func (s *Supervisor) disableCgroups() {
	s.plat.mu.Lock()
	defer s.plat.mu.Unlock()
	s.plat.cgroupBase = ""
}

// spawn starts the command newCmd returns, in a new cgroup of p's if runners
// get cgroups (p.cgroup is set then). If starting in a cgroup fails, it
// starts the command without one and gives later runners none either.
func (s *Supervisor) spawn(p *Process, newCmd func() *exec.Cmd) (*exec.Cmd, error) {
	s.plat.mu.Lock()
	base := s.plat.cgroupBase
	s.plat.mu.Unlock()
	if base != "" {
		cmd, dir, cgErr := startInCgroup(base, p.runnerID, newCmd)
		if cgErr == nil {
			p.cgroup = dir
			return cmd, nil
		}
		cmd = newCmd()
		if err := startCmd(cmd); err != nil {
			return nil, err
		}
		s.disableCgroups()
		s.log.Warn("starting runners in a cgroup failed; runners get no cgroup from now on", "err", cgErr)
		return cmd, nil
	}
	cmd := newCmd()
	if err := startCmd(cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// started registers a runner whose shell has just been started.
func (s *Supervisor) started(p *Process) {
	s.plat.mu.Lock()
	defer s.plat.mu.Unlock()
	s.plat.runners[p] = true
}

// forget unregisters a runner none of whose processes is alive and removes
// its cgroup.
func (s *Supervisor) forget(p *Process) {
	s.plat.mu.Lock()
	delete(s.plat.runners, p)
	delete(s.plat.zombieDeadline, p)
	s.plat.mu.Unlock()
	if p.cgroup != "" {
		if err := removeCgroup(p.cgroup, cgroupRemoveWait); err != nil {
			s.log.Warn("remove runner cgroup", "runner_id", p.runnerID, "cgroup", p.cgroup, "err", err)
		}
	}
}

// startTracking starts the goroutine that follows the runners' processes,
// unless it runs. s.mu is held.
func (s *Supervisor) startTracking() {
	s.plat.mu.Lock()
	defer s.plat.mu.Unlock()
	if s.plat.tracking {
		return
	}
	s.plat.tracking = true
	go s.track()
}

// track looks at the runners' processes every trackInterval, so that
// descendants are known (and recorded in pid files) before they can leave
// the runner's tree, and reaps the runners' zombies, until no runner is left.
func (s *Supervisor) track() {
	tick := time.NewTicker(trackInterval)
	defer tick.Stop()
	for range tick.C {
		s.mu.Lock()
		if len(s.procs) == 0 {
			s.plat.mu.Lock()
			s.plat.tracking = false
			s.plat.mu.Unlock()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.observe()
	}
}

// treeAlive reports whether a process of p's is alive (not a zombie), and
// reaps those of its zombies that are children of this process. It also
// reports true, for up to zombieWait, while one of its zombies is not
// reaped yet: a zombie thread group leader is reaped only once its last
// thread has exited, a zombie whose parent is dying is reparented to this
// process a moment later, and once p is forgotten its zombies would never
// be reaped.
func (s *Supervisor) treeAlive(p *Process) bool {
	members, ok := s.observe()
	if !ok {
		// No /proc: only the process group can be seen; zombies count.
		return !p.gone.Load() && syscall.Kill(-p.pid, 0) == nil
	}
	unreaped := false
	for _, ps := range members[p] {
		if !ps.zombie {
			return true
		}
		// A zombie whose parent is another of the runner's dying
		// processes is not this process's child yet: it becomes one (this
		// process is their subreaper) once that parent is gone, and must
		// still be reaped then, before p is forgotten.
		if ps.pid != p.pid {
			if cur, err := readStat(ps.pid); err == nil && cur.start == ps.start {
				unreaped = true
			}
		}
	}
	if !unreaped {
		return false
	}
	s.plat.mu.Lock()
	defer s.plat.mu.Unlock()
	deadline, ok := s.plat.zombieDeadline[p]
	if !ok {
		deadline = time.Now().Add(zombieWait)
		s.plat.zombieDeadline[p] = deadline
	}
	return time.Now().Before(deadline)
}

// signalTree sends sig to p's process group and to the processes of p's
// outside it. It reports whether a process was signalled. It looks for p's
// processes before it signals the group: a process whose parent the signal
// kills would no longer be linked to the runner by its parent.
func (s *Supervisor) signalTree(p *Process, sig syscall.Signal) (bool, error) {
	members, ok := s.observe()
	delivered := false
	var groupErr error
	switch err := syscall.Kill(-p.pid, sig); {
	case err == nil:
		delivered = true
	case !errors.Is(err, syscall.ESRCH):
		groupErr = err
	}
	if !ok {
		return delivered, groupErr
	}
	for _, ps := range members[p] {
		if ps.zombie || ps.pgrp == p.pid {
			continue // signalled with the group
		}
		switch err := signalProc(ps, sig); {
		case err == nil:
			delivered = true
		case !errors.Is(err, syscall.ESRCH):
			s.log.Warn("signal runner process", "runner_id", p.runnerID, "pid", ps.pid, "signal", sig, "err", err)
		}
	}
	return delivered, groupErr
}

// killTree kills p's processes: it stops every process of p's (SIGSTOP,
// again until no new one appears, so that none can fork or exit meanwhile
// and break the parent links that lead to its children), then kills its
// cgroup at once if it has one, its process group, and each process it
// stopped (SIGKILL). It reports whether a process was signalled.
func (s *Supervisor) killTree(p *Process) bool {
	delivered := false
	n := s.freezeAndKill(p.runnerID, func() ([]procStat, bool) {
		members, ok := s.observe()
		return members[p], ok
	}, func() {
		if p.cgroup != "" {
			if pids, err := cgroupProcs(p.cgroup); err == nil && len(pids) > 0 && cgroupKill(p.cgroup) == nil {
				delivered = true
			}
		}
		if !p.gone.Load() && syscall.Kill(-p.pid, syscall.SIGKILL) == nil {
			delivered = true
		}
	})
	return delivered || n > 0
}

// freezeAndKill stops (SIGSTOP) the live processes find returns, again and
// again until find returns no process that was not stopped yet, then calls
// killAll (if not nil) and kills each process it stopped (SIGKILL). It
// returns how many processes it killed.
func (s *Supervisor) freezeAndKill(runnerID string, find func() ([]procStat, bool), killAll func()) int {
	stopped := make(map[procKey]procStat)
	for range freezeRounds {
		procs, ok := find()
		if !ok {
			break
		}
		fresh := 0
		for _, ps := range procs {
			if _, seen := stopped[ps.key()]; seen || ps.zombie {
				continue
			}
			stopped[ps.key()] = ps
			fresh++
			if err := signalProc(ps, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
				s.log.Warn("stop runner process", "runner_id", runnerID, "pid", ps.pid, "err", err)
			}
		}
		if fresh == 0 {
			break
		}
	}
	if killAll != nil {
		killAll()
	}
	killed := 0
	for _, ps := range stopped {
		switch err := signalProc(ps, syscall.SIGKILL); {
		case err == nil:
			killed++
		case !errors.Is(err, syscall.ESRCH):
			s.log.Warn("kill runner process", "runner_id", runnerID, "pid", ps.pid, "err", err)
		}
	}
	return killed
}

// observe reads /proc, sorts the processes it finds among the registered
// runners (see assign), reaps the runners' zombies that are children of
// this process, and records in the pid files processes not recorded yet.
// It returns each runner's processes, zombies included, or false if /proc
// cannot be read.
func (s *Supervisor) observe() (map[*Process][]procStat, bool) {
	table, err := readProcTable()
	if err != nil {
		return nil, false
	}
	s.plat.mu.Lock()
	runners := slices.Collect(maps.Keys(s.plat.runners))
	s.plat.mu.Unlock()
	inCgroup := make(map[int]*Process)
	for _, p := range runners {
		if p.cgroup == "" {
			continue
		}
		pids, _ := cgroupProcs(p.cgroup)
		for _, pid := range pids {
			inCgroup[pid] = p
		}
	}

	self := os.Getpid()
	s.plat.mu.Lock()
	members := s.plat.assign(table, runners, inCgroup, self)
	s.plat.mu.Unlock()

	shells := make(map[int]bool, len(runners))
	for _, p := range runners {
		shells[p.pid] = true // reaped by exec.Cmd.Wait, never here
	}
	for p, procs := range members {
		for _, ps := range procs {
			if ps.zombie && ps.ppid == self && !shells[ps.pid] {
				reapZombie(ps, self)
			}
		}
		if p.noteProcs(procs) {
			if err := s.writePidFile(p); err != nil {
				s.log.Warn("record runner processes", "runner_id", p.runnerID, "err", err)
			}
		}
	}
	return members, true
}

// assign sorts the processes of table among runners, and returns each
// runner's. A process belongs to a runner if, in this order:
//   - it is in the runner's cgroup (inCgroup);
//   - it was found to belong to the runner before (same pid, same start time);
//   - it is in the runner's process group;
//   - it is a zombie child of this process whose cgroup is the runner's;
//   - its parent is this process, init or not visible, and its environment
//     holds REVLINE_RUNNER_ID=<the runner's id>;
//   - its parent belongs to the runner.
//
// This process and its ancestors belong to no runner. mu is held.
func (st *platformState) assign(table procTable, runners []*Process, inCgroup map[int]*Process, self int) map[*Process][]procStat {
	byPgid := make(map[int]*Process, len(runners))
	byID := make(map[string]*Process, len(runners))
	byCgroup := make(map[string]*Process)
	for _, p := range runners {
		if !p.gone.Load() {
			byPgid[p.pid] = p
		}
		byID[p.runnerID] = p
		if p.cgroup != "" {
			byCgroup[lastElem(p.cgroup)] = p
		}
	}
	excluded := ancestors(table, self)
	owner := make(map[int]*Process)
	for pid, ps := range table {
		if excluded[pid] {
			continue
		}
		var p *Process
		if q := inCgroup[pid]; q != nil {
			p = q
		} else if q := st.owner[ps.key()]; q != nil && st.runners[q] {
			p = q
		} else if q := byPgid[ps.pgrp]; q != nil {
			p = q
		} else if ps.zombie {
			if ps.ppid == self && len(byCgroup) > 0 {
				p = byCgroup[lastElem(procCgroup(pid))]
			}
		} else if _, visible := table[ps.ppid]; ps.ppid == self || ps.ppid == 1 || !visible {
			p = byID[st.marker(ps)]
		}
		if p != nil {
			owner[pid] = p
		}
	}
	inheritOwners(table, owner, excluded)

	for key := range st.markers {
		if ps, ok := table[key.pid]; !ok || ps.start != key.start {
			delete(st.markers, key)
		}
	}
	clear(st.owner)
	members := make(map[*Process][]procStat)
	for pid, p := range owner {
		ps := table[pid]
		st.owner[ps.key()] = p
		members[p] = append(members[p], ps)
	}
	return members
}

// marker returns the REVLINE_RUNNER_ID in the environment of ps, from the
// cache or /proc. mu is held.
func (st *platformState) marker(ps procStat) string {
	if m, ok := st.markers[ps.key()]; ok {
		return m
	}
	m := readMarker(ps.pid)
	st.markers[ps.key()] = m
	return m
}

// noteProcs records procs, p's processes, as the processes to list in p's
// pid file, and reports whether some were not listed yet.
func (p *Process) noteProcs(procs []procStat) bool {
	p.pidFileMu.Lock()
	defer p.pidFileMu.Unlock()
	if p.gone.Load() {
		return false
	}
	listed := make(map[procKey]bool, len(p.recorded))
	for _, k := range p.recorded {
		listed[k] = true
	}
	changed := false
	var keys []procKey
	for _, ps := range procs {
		if ps.zombie {
			continue
		}
		keys = append(keys, ps.key())
		if !listed[ps.key()] {
			changed = true
		}
	}
	if changed {
		slices.SortFunc(keys, func(a, b procKey) int { return a.pid - b.pid })
		p.recorded = keys[:min(len(keys), maxRecordedProcs)]
	}
	return changed
}

// killOrphans kills, for each record, the processes of the runner it
// describes (see SweepOrphans), and removes the runner's cgroup.
func (s *Supervisor) killOrphans(recs []pidRecord) []orphanResult {
	results := make([]orphanResult, len(recs))
	markers := make(map[procKey]string)
	for i, rec := range recs {
		cgroup := ""
		if rec.cgroup != "" && isRunnerCgroup(rec.cgroup, rec.runnerID) {
			cgroup = rec.cgroup
		}
		find := func() ([]procStat, bool) {
			table, err := readProcTable()
			if err != nil {
				return nil, false
			}
			return s.orphanProcs(table, rec, cgroup, markers), true
		}
		killCgroup := func() {
			if cgroup == "" {
				return
			}
			if pids, err := cgroupProcs(cgroup); err == nil && len(pids) > 0 && cgroupKill(cgroup) == nil {
				results[i].killed = true
				results[i].count = len(pids)
			}
		}
		if n := s.freezeAndKill(rec.runnerID, find, killCgroup); n > 0 {
			results[i].killed = true
			results[i].count = max(results[i].count, n)
		}
		if cgroup != "" {
			if err := removeCgroup(cgroup, cgroupRemoveWait); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("remove orphaned runner's cgroup", "runner_id", rec.runnerID, "cgroup", cgroup, "err", err)
			}
		}
	}
	return results
}

// orphanProcs returns the live processes of the runner rec describes: those
// in its cgroup, those listed in rec that still run, its process group if a
// member's environment holds REVLINE_RUNNER_ID=<rec.runnerID>, every process
// whose environment holds it, and their descendants; never this process, its
// ancestors or processes of the supervisor's own runners.
func (s *Supervisor) orphanProcs(table procTable, rec pidRecord, cgroup string, markers map[procKey]string) []procStat {
	marker := func(ps procStat) string {
		if m, ok := markers[ps.key()]; ok {
			return m
		}
		m := readMarker(ps.pid)
		markers[ps.key()] = m
		return m
	}
	excluded := ancestors(table, os.Getpid())
	s.plat.mu.Lock()
	for pid, ps := range table {
		if q := s.plat.owner[ps.key()]; q != nil && s.plat.runners[q] {
			excluded[pid] = true
		}
	}
	for q := range s.plat.runners {
		for pid, ps := range table {
			if ps.pgrp == q.pid {
				excluded[pid] = true
			}
		}
	}
	s.plat.mu.Unlock()

	listed := make(map[procKey]bool, len(rec.procs))
	for _, k := range rec.procs {
		listed[k] = true
	}
	inCgroup := make(map[int]bool)
	if cgroup != "" {
		pids, _ := cgroupProcs(cgroup)
		for _, pid := range pids {
			inCgroup[pid] = true
		}
	}
	groupOwned := false
	for _, ps := range table {
		if ps.pgrp == rec.pgid && !ps.zombie && !excluded[ps.pid] && marker(ps) == rec.runnerID {
			groupOwned = true
			break
		}
	}
	owner := make(map[int]*Process)
	orphan := &Process{} // stands for the runner of rec
	for pid, ps := range table {
		if excluded[pid] || ps.zombie {
			continue
		}
		if inCgroup[pid] || listed[ps.key()] || (groupOwned && ps.pgrp == rec.pgid) || marker(ps) == rec.runnerID {
			owner[pid] = orphan
		}
	}
	inheritOwners(table, owner, excluded)
	var procs []procStat
	for pid := range owner {
		if ps := table[pid]; !ps.zombie {
			procs = append(procs, ps)
		}
	}
	return procs
}

// inheritOwners gives every process without an owner the owner of its
// nearest ancestor that has one, except excluded processes.
func inheritOwners(table procTable, owner map[int]*Process, excluded map[int]bool) {
	children := make(map[int][]int)
	for pid, ps := range table {
		children[ps.ppid] = append(children[ps.ppid], pid)
	}
	queue := slices.Collect(maps.Keys(owner))
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, child := range children[pid] {
			if _, ok := owner[child]; ok || excluded[child] {
				continue
			}
			owner[child] = owner[pid]
			queue = append(queue, child)
		}
	}
}

// ancestors returns pid and its ancestors in table, as a set.
func ancestors(table procTable, pid int) map[int]bool {
	set := make(map[int]bool)
	for pid > 0 && !set[pid] {
		set[pid] = true
		ps, ok := table[pid]
		if !ok {
			break
		}
		pid = ps.ppid
	}
	return set
}

// procStat is what the supervisor reads of a process in /proc/<pid>/stat.
type procStat struct {
	pid    int
	ppid   int
	pgrp   int
	zombie bool   // state Z (zombie) or X (dead)
	start  uint64 // clock ticks after boot
}

func (ps procStat) key() procKey { return procKey{pid: ps.pid, start: ps.start} }

// procTable holds the processes found in /proc, by pid.
type procTable map[int]procStat

// readProcTable reads /proc/<pid>/stat of every process.
func readProcTable() (procTable, error) {
	pids, err := procPIDs()
	if err != nil {
		return nil, err
	}
	table := make(procTable, len(pids))
	for _, pid := range pids {
		if ps, err := readStat(pid); err == nil {
			table[pid] = ps
		}
	}
	return table, nil
}

// procPIDs lists the pids in /proc.
func procPIDs() ([]int, error) {
	dir, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/<pid>/stat: "pid (comm) state ppid pgrp ...", where
// comm may contain spaces and parentheses.
func parseStat(b []byte) (procStat, error) {
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed stat %q: %w", s, err)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("malformed stat %q: %w", s, err)
	}
	return procStat{pid: pid, ppid: ppid, pgrp: pgrp, zombie: f[0] == "Z" || f[0] == "X", start: start}, nil
}

// readMarker returns the value of REVLINE_RUNNER_ID in the environment of
// process pid, or "" if it has none or it cannot be read.
func readMarker(pid int) string {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	const name = "REVLINE_RUNNER_ID="
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name)); ok {
			return string(v)
		}
	}
	return ""
}

// liveUIDs returns the uids (real, effective, saved and filesystem) of
// every live process in /proc; nil if /proc cannot be read. Zombies do not
// count: they hold no memory, environment or descriptor, and may never be
// reaped where init does not reap.
func liveUIDs() map[uint32]bool {
	pids, err := procPIDs()
	if err != nil {
		return nil
	}
	uids := make(map[uint32]bool)
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue // gone meanwhile
		}
		var ids []string
		zombie := false
		for line := range strings.SplitSeq(string(b), "\n") {
			if state, ok := strings.CutPrefix(line, "State:"); ok {
				state = strings.TrimSpace(state)
				zombie = strings.HasPrefix(state, "Z") || strings.HasPrefix(state, "X")
			} else if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				ids = strings.Fields(rest)
				break // State comes before Uid
			}
		}
		if zombie {
			continue
		}
		for _, f := range ids {
			if uid, err := strconv.ParseUint(f, 10, 32); err == nil {
				uids[uint32(uid)] = true
			}
		}
	}
	return uids
}

// procCgroup returns the cgroup v2 path of process pid, or "".
func procCgroup(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path
		}
	}
	return ""
}

func lastElem(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}

// signalProc sends sig to the process ps names, unless its pid now names
// another process (it reports ESRCH then). With a pidfd the check and the
// signal cannot be separated by a pid reuse.
func signalProc(ps procStat, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(ps.pid, 0)
	if err != nil {
		if !errors.Is(err, syscall.ENOSYS) {
			return err
		}
		// Before Linux 5.3: check, then signal.
		if cur, err := readStat(ps.pid); err != nil || cur.start != ps.start {
			return syscall.ESRCH
		}
		return syscall.Kill(ps.pid, sig)
	}
	defer unix.Close(fd)
	if cur, err := readStat(ps.pid); err != nil || cur.start != ps.start {
		return syscall.ESRCH
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// reapZombie collects the exit status of ps, a zombie child of this process
// (self), unless its pid now names another process.
func reapZombie(ps procStat, self int) {
	fd, err := unix.PidfdOpen(ps.pid, 0)
	if err != nil {
		if !errors.Is(err, syscall.ENOSYS) {
			return
		}
		if cur, err := readStat(ps.pid); err == nil && cur.start == ps.start && cur.zombie && cur.ppid == self {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(ps.pid, &ws, unix.WNOHANG, nil)
		}
		return
	}
	defer unix.Close(fd)
	if cur, err := readStat(ps.pid); err != nil || cur.start != ps.start || !cur.zombie || cur.ppid != self {
		return
	}
	var info unix.Siginfo
	_ = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
}
