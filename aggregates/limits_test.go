package aggregates_test

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// deployOf is a valid deploy of revision r1 with change applied.
func deployOf(change func(*events.Deploy)) events.Deploy {
	d := events.Deploy{RevisionID: r1, Command: runCommand}
	change(&d)
	return d
}

// createdBy is the event a valid deploy d of a new app records.
func createdBy(d events.Deploy) events.RevisionCreated {
	return events.RevisionCreated{
		RevisionID: d.RevisionID, Number: 1, Command: d.Command,
		Code: d.Code.Apply(events.DefaultCodeParams()), Runtime: d.Runtime.Apply(events.DefaultRuntimeParams()),
		ResetScale: d.ResetScale, Strategy: events.StrategyRolling, Message: d.Message, Annotations: d.Annotations,
	}
}

// sized is a string of size bytes: repeats of unit (one or more bytes),
// then 'x' up to size.
func sized(size int, unit string) string {
	s := strings.Repeat(unit, size/len(unit))
	return s + strings.Repeat("x", size-len(s))
}

// annotations is count annotations with keys key-0000, key-0001, ... (8
// bytes each) and value v.
func annotations(count int, v string) map[string]string {
	a := make(map[string]string, count)
	for i := range count {
		a[fmt.Sprintf("key-%04d", i)] = v
	}
	return a
}

// withAnnotations returns a copy of a with more.
func withAnnotations(a map[string]string, more map[string]string) map[string]string {
	c := maps.Clone(a)
	maps.Copy(c, more)
	return c
}

// textCase is a free text that a field must accept or refuse.
type textCase struct {
	name   string
	text   string
	accept bool
	says   []string // fragments of the refusal, besides the field's name
}

// freeTextCases are the characters every free-text field (command line,
// message, annotation value, reason) accepts or refuses, whatever its size.
func freeTextCases() []textCase {
	return []textCase{
		{name: "tab", text: "a\tb", accept: true},
		{name: "non_ascii_letters", text: "déploiement 部署 🚀", accept: true},
		{name: "replacement_character", text: "caf\uFFFD", accept: true},
		{name: "escape_sequence", text: "ok\x1b[2J\x1b]0;pwned\x07", says: []string{"control characters", "U+001B", "byte 2"}},
		{name: "newline", text: "first\nsecond", says: []string{"control characters", "U+000A"}},
		{name: "carriage_return", text: "shown\rhidden", says: []string{"control characters", "U+000D"}},
		{name: "nul", text: "a\x00b", says: []string{"control characters", "U+0000"}},
		{name: "bell", text: "a\x07", says: []string{"U+0007"}},
		{name: "delete", text: "a\x7f", says: []string{"control characters", "U+007F"}},
		{name: "c1_control", text: "a\u009b31m", says: []string{"control characters", "U+009B"}},
		{name: "line_separator", text: "a\u2028b", says: []string{"separators", "U+2028"}},
		{name: "bidi_override", text: "a\u202eb", says: []string{"bidirectional", "U+202E"}},
		{name: "bidi_isolate", text: "a\u2066b", says: []string{"bidirectional", "U+2066"}},
		{name: "invalid_utf8", text: "a\xffb", says: []string{"UTF-8", "0xff", "byte 1"}},
		{name: "lone_c1_byte", text: "a\x9bb", says: []string{"UTF-8", "0x9b"}},
		{name: "truncated_utf8", text: "caf\xc3", says: []string{"UTF-8", "0xc3"}},
	}
}

// textSpecs are the freeTextCases for one field: given the history, the
// command that carries text, and the events it records when accepted.
func textSpecs(prefix, field string, given []events.Event, when func(string) events.Command, then func(string) []events.Event) []spec {
	var specs []spec
	for _, c := range freeTextCases() {
		s := spec{name: prefix + "_with_" + c.name, given: given, when: when(c.text)}
		if c.accept {
			s.name += "_is_accepted"
			s.then = then(c.text)
		} else {
			s.name += "_is_rejected"
			s.reject = aggregates.CodeInvalidArgument
			s.says = append([]string{field}, c.says...)
		}
		specs = append(specs, s)
	}
	return specs
}

// sizeSpecs are the two sides of a size limit: text of max bytes is
// accepted, one byte more is refused with a sentence naming the field,
// the limit and the size sent. unit is what the text is made of.
func sizeSpecs(prefix, field string, max int, unit string, given []events.Event, when func(string) events.Command, then func(string) []events.Event) []spec {
	return []spec{
		{
			name:  prefix + "_at_the_limit_is_accepted",
			given: given,
			when:  when(sized(max, unit)),
			then:  then(sized(max, unit)),
		},
		{
			name:   prefix + "_one_byte_over_the_limit_is_rejected",
			given:  given,
			when:   when(sized(max+1, unit)),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{field, "at most " + strconv.Itoa(max) + " bytes", "got " + strconv.Itoa(max+1) + " bytes"},
		},
		{
			// The attacker's case: the sentence stays short (asRejection).
			name:   prefix + "_of_seven_mebibytes_is_rejected",
			given:  given,
			when:   when(sized(7<<20, unit)),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{field, strconv.Itoa(max), strconv.Itoa(7 << 20)},
		},
	}
}

func commandLineSpecs() []spec {
	deploy := func(text string) events.Command {
		return deployOf(func(d *events.Deploy) { d.Command = text })
	}
	created := func(text string) []events.Event { return evs(createdBy(deploy(text).(events.Deploy))) }
	specs := append(
		sizeSpecs("command_line", "command", aggregates.MaxCommandLineBytes, "echo $PORT && ", nil, deploy, created),
		textSpecs("command_line", "command", nil, deploy, created)...)
	return append(specs,
		spec{
			name:   "blank_command_line_is_rejected",
			when:   deploy(" \t "),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"command"},
		},
		spec{
			name: "command_line_with_shell_syntax_is_accepted",
			when: deploy(`cd app && exec python3 -m http.server "$PORT" 2>&1 | tee -a 'log' > /dev/null; echo ~ <in # ok`),
			then: created(`cd app && exec python3 -m http.server "$PORT" 2>&1 | tee -a 'log' > /dev/null; echo ~ <in # ok`),
		},
	)
}

func messageSpecs() []spec {
	deploy := func(text string) events.Command {
		return deployOf(func(d *events.Deploy) { d.Message = text })
	}
	created := func(text string) []events.Event { return evs(createdBy(deploy(text).(events.Deploy))) }
	setRev := func(text string) events.Command { return events.SetRevision{RevisionID: r1, Message: text} }
	rolledBackWith := func(text string) []events.Event {
		ev := rolledBack(r2, r1, cpuCode, quietRuntime)
		ev.Message = text
		return evs(ev)
	}
	return concat(
		// 'é' is two bytes: the limit counts bytes, not characters.
		sizeSpecs("deploy_message", "message", aggregates.MaxMessageBytes, "é", nil, deploy, created),
		textSpecs("deploy_message", "message", nil, deploy, created),
		sizeSpecs("set_revision_message", "message", aggregates.MaxMessageBytes, "rollback ", twoRevisions(), setRev, rolledBackWith),
		textSpecs("set_revision_message", "message", twoRevisions(), setRev, rolledBackWith),
	)
}

func annotationSpecs() []spec {
	deploy := func(a map[string]string) events.Deploy {
		return deployOf(func(d *events.Deploy) { d.Annotations = a })
	}
	value := func(text string) events.Command { return deploy(map[string]string{"git_sha": text}) }
	createdWith := func(text string) []events.Event { return evs(createdBy(value(text).(events.Deploy))) }
	// The total at the limit: 8 annotations of 8-byte keys and values of
	// 1016 bytes are 8192 bytes.
	full := annotations(8, sized(aggregates.MaxAnnotationsBytes/8-8, "v"))
	key := func(k string) events.Deploy { return deploy(map[string]string{k: "v"}) }
	specs := concat(
		sizeSpecs("annotation_value", `annotation "git_sha"`, aggregates.MaxAnnotationValueBytes, "https://ci.example.com/", nil, value, createdWith),
		textSpecs("annotation_value", `annotation "git_sha"`, nil, value, createdWith),
	)
	specs = append(specs, []spec{
		{
			name: "empty_annotation_value_is_accepted",
			when: value(""),
			then: createdWith(""),
		},
		{
			name: "annotations_at_the_count_limit_are_accepted",
			when: deploy(annotations(aggregates.MaxAnnotations, "v")),
			then: evs(createdBy(deploy(annotations(aggregates.MaxAnnotations, "v")))),
		},
		{
			name:   "annotations_one_over_the_count_limit_are_rejected",
			when:   deploy(annotations(aggregates.MaxAnnotations+1, "v")),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"annotations", "at most 64", "got 65"},
		},
		{
			name:   "a_hundred_thousand_annotations_are_rejected",
			when:   deploy(annotations(100_000, "v")),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"annotations", "at most 64", "got 100000"},
		},
		{
			name: "annotations_at_the_total_size_limit_are_accepted",
			when: deploy(full),
			then: evs(createdBy(deploy(full))),
		},
		{
			name:   "annotations_one_byte_over_the_total_size_limit_are_rejected",
			when:   deploy(withAnnotations(full, map[string]string{"z": ""})),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"annotations", "at most 8192 bytes in all", "got 8193 bytes"},
		},
		{
			name: "annotation_key_at_the_limit_is_accepted",
			when: key(sized(aggregates.MaxAnnotationKeyBytes, "k")),
			then: evs(createdBy(key(sized(aggregates.MaxAnnotationKeyBytes, "k")))),
		},
		{
			name:   "annotation_key_one_byte_over_the_limit_is_rejected",
			when:   key(sized(aggregates.MaxAnnotationKeyBytes+1, "k")),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"annotation key", "at most 63 bytes", "got 64 bytes"},
		},
		{
			name: "annotation_keys_of_letters_digits_dots_dashes_underscores_and_slashes_are_accepted",
			when: deploy(map[string]string{"ci.example.com/build-url": "u", "Git_SHA": "s", "a": "1", "9": "2"}),
			then: evs(createdBy(deploy(map[string]string{"ci.example.com/build-url": "u", "Git_SHA": "s", "a": "1", "9": "2"}))),
		},
	}...)
	for name, k := range map[string]string{
		"space": "git sha", "leading_dash": "-sha", "trailing_slash": "ci/", "leading_dot": ".env",
		"escape": "a\x1b[2Jb", "newline": "a\nb", "non_ascii": "clé", "invalid_utf8": "a\xffb", "colon": "ci:url",
	} {
		specs = append(specs, spec{
			name:   "annotation_key_with_" + name + "_is_rejected",
			when:   key(k),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"annotation key", strconv.Quote(k), "letters, digits"},
		})
	}
	return specs
}

func machineTypeSpecs() []spec {
	deploy := func(mt string) events.Deploy {
		return deployOf(func(d *events.Deploy) { d.Code.MachineType = &mt })
	}
	scale := func(mt string) events.Scale { return events.Scale{Code: events.CodeOverrides{MachineType: &mt}} }
	specs := []spec{
		{
			name: "machine_type_at_the_limit_is_accepted",
			when: deploy(sized(aggregates.MaxMachineTypeBytes, "GPU-H100")),
			then: evs(createdBy(deploy(sized(aggregates.MaxMachineTypeBytes, "GPU-H100")))),
		},
		{
			name:   "machine_type_one_byte_over_the_limit_is_rejected",
			when:   deploy(sized(aggregates.MaxMachineTypeBytes+1, "GPU-H100")),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"machine_type", "at most 64 bytes", "got 65 bytes"},
		},
		{
			name:   "scaling_to_a_machine_type_over_the_limit_is_rejected",
			given:  live(r1),
			when:   scale(sized(aggregates.MaxMachineTypeBytes+1, "M")),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"machine_type", "at most 64 bytes", "got 65 bytes"},
		},
		{
			name:   "scaling_to_a_machine_type_with_an_escape_is_rejected",
			given:  live(r1),
			when:   scale("GPU\x1b[2J"),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"machine_type", `"GPU\x1b[2J"`},
		},
	}
	for _, mt := range []string{"XS", "GPU-H100", "p4de.24xlarge", "Standard_NC24ads_A100_v4"} {
		specs = append(specs, spec{
			name: "machine_type_" + mt + "_is_accepted",
			when: deploy(mt),
			then: evs(createdBy(deploy(mt))),
		})
	}
	for name, mt := range map[string]string{
		"space": "GPU H100", "leading_dash": "-XS", "trailing_dot": "XS.", "slash": "gpu/h100", "newline": "XS\n",
		"non_ascii": "GPU-Ä100", "invalid_utf8": "XS\xff",
	} {
		specs = append(specs, spec{
			name:   "machine_type_with_" + name + "_is_rejected",
			when:   deploy(mt),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"machine_type", strconv.Quote(mt), "letters, digits"},
		})
	}
	return specs
}

// notUUIDs are ids that are not a UUID in canonical form.
var notUUIDs = map[string]string{
	"short_name":   "r1",
	"upper_case":   "01900000-0000-7000-8000-00000000000A",
	"braces":       "{01900000-0000-7000-8000-000000000001}",
	"urn":          "urn:uuid:01900000-0000-7000-8000-000000000001",
	"no_dashes":    "01900000000070008000000000000001",
	"escape":       "\x1b[2J",
	"huge":         sized(7<<20, "a"),
	"trailing_nul": r1 + "\x00",
}

func idSpecs() []spec {
	var specs []spec
	for name, id := range notUUIDs {
		// A reference shorter than an id prefix may be is refused as such.
		unknown := aggregates.CodeRevisionNotFound
		if len(id) < aggregates.MinRevisionPrefix {
			unknown = aggregates.CodeRevisionRefTooShort
		}
		shown := strconv.Quote(id)
		if len(id) > 40 {
			shown = strconv.Itoa(len(id)) + " bytes"
		}
		specs = append(specs,
			spec{
				name:   "deploy_with_a_revision_id_that_is_not_a_uuid_is_rejected_" + name,
				when:   events.Deploy{RevisionID: id, Command: runCommand},
				reject: aggregates.CodeInvalidArgument,
				says:   []string{"revision_id", "UUID", shown},
			},
			spec{
				name:   "rollout_with_an_id_that_is_not_a_uuid_is_rejected_" + name,
				given:  live(r1),
				when:   events.Rollout{RolloutID: id},
				reject: aggregates.CodeInvalidArgument,
				says:   []string{"rollout_id", "UUID", shown},
			},
			spec{
				name:   "runner_report_with_an_id_that_is_not_a_uuid_is_rejected_" + name,
				given:  live(r1),
				when:   events.ReportRunner{RunnerID: id, RevisionID: r1, State: events.RunnerIdle},
				reject: aggregates.CodeInvalidArgument,
				says:   []string{"runner_id", "UUID", shown},
			},
			// Ids that name something that exists are looked up, not
			// checked (a history may hold ids chosen before UUIDs were
			// required); one that names nothing is quoted in the answer,
			// short and harmless.
			spec{
				name:   "set_revision_to_an_unknown_id_is_rejected_" + name,
				given:  twoRevisions(),
				when:   events.SetRevision{RevisionID: id},
				reject: unknown,
			},
			spec{
				name:   "deleting_an_unknown_id_is_rejected_" + name,
				given:  twoRevisions(),
				when:   events.DeleteRevision{RevisionID: id},
				reject: unknown,
			},
			spec{
				name:   "completing_an_unknown_rollout_id_is_rejected_" + name,
				given:  history(live(r1), evs(rolloutRequested(ro1, r1, false))),
				when:   events.CompleteRollout{RolloutID: id},
				reject: aggregates.CodeRolloutNotFound,
			},
		)
	}
	legacy := "legacy-revision"
	return append(specs,
		spec{
			name: "a_revision_id_in_canonical_form_of_any_uuid_version_is_accepted",
			when: events.Deploy{RevisionID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Command: runCommand},
			then: evs(created("6ba7b810-9dad-11d1-80b4-00c04fd430c8", numbered(1))),
		},
		spec{
			name:  "a_revision_with_an_id_chosen_before_uuids_were_required_can_still_be_set",
			given: history(live(r1), promoted(r1, legacy, defaultRuntime)),
			when:  events.SetRevision{RevisionID: r1},
			then:  evs(rolledBack(legacy, r1, defaultCode, defaultRuntime)),
		},
		spec{
			name:   "an_unknown_strategy_is_quoted_short",
			when:   deployOf(func(d *events.Deploy) { d.Strategy = events.Strategy("\x1b[2J" + sized(1<<20, "s")) }),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"strategy", `"\x1b[2J`, "bytes)"},
		},
		spec{
			name:   "an_unknown_runner_state_is_quoted_short",
			given:  live(r1),
			when:   events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerState(sized(1<<20, "z"))},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"runner state", "bytes)"},
		},
	)
}

func reasonSpecs() []spec {
	deploying := evs(created(r1))
	fail := func(text string) events.Command { return events.FailDeploy{RevisionID: r1, Reason: text} }
	failedWith := func(text string) []events.Event { return evs(events.RevisionFailed{RevisionID: r1, Reason: text}) }
	report := func(text string) events.Command {
		return events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated, Reason: text}
	}
	reported := func(text string) []events.Event {
		return evs(events.RunnerStateChanged{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated, Reason: text})
	}
	return concat(
		sizeSpecs("fail_deploy_reason", "reason", aggregates.MaxReasonBytes, "runner exited with status 1; ", deploying, fail, failedWith),
		textSpecs("fail_deploy_reason", "reason", deploying, fail, failedWith),
		sizeSpecs("runner_report_reason", "reason", aggregates.MaxReasonBytes, "exited: exit status 1 ", deploying, report, reported),
		textSpecs("runner_report_reason", "reason", deploying, report, reported),
		[]spec{{
			name:   "blank_fail_deploy_reason_is_rejected",
			given:  deploying,
			when:   fail("  "),
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"reason"},
		}},
	)
}

func runnerNumberSpecs() []spec {
	report := func(pid, port int) events.ReportRunner {
		return events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerIdle, PID: pid, Port: port}
	}
	reported := func(pid, port int) []events.Event { return evs(events.RunnerStateChanged(report(pid, port))) }
	return []spec{
		{name: "runner_pid_at_the_limit_is_accepted", given: live(r1), when: report(aggregates.MaxRunnerPID, 8080), then: reported(aggregates.MaxRunnerPID, 8080)},
		{name: "runner_port_at_the_limit_is_accepted", given: live(r1), when: report(1, aggregates.MaxPort), then: reported(1, aggregates.MaxPort)},
		{
			name: "runner_pid_over_the_limit_is_rejected", given: live(r1), when: report(aggregates.MaxRunnerPID+1, 8080),
			reject: aggregates.CodeInvalidArgument, says: []string{"pid", strconv.Itoa(aggregates.MaxRunnerPID), strconv.Itoa(aggregates.MaxRunnerPID + 1)},
		},
		{
			name: "negative_runner_pid_is_rejected", given: live(r1), when: report(-1, 8080),
			reject: aggregates.CodeInvalidArgument, says: []string{"pid", "got -1"},
		},
		{
			name: "runner_port_over_the_limit_is_rejected", given: live(r1), when: report(1, aggregates.MaxPort+1),
			reject: aggregates.CodeInvalidArgument, says: []string{"port", "65535", "got 65536"},
		},
		{
			name: "negative_runner_port_is_rejected", given: live(r1), when: report(1, -1),
			reject: aggregates.CodeInvalidArgument, says: []string{"port", "got -1"},
		},
	}
}

// largestDeploy is a deploy with every field at its limit, its text made
// of the character JSON encoders escape the most ('<', six bytes in Go's
// encoding/json) wherever the field allows it.
func largestDeploy() events.Deploy {
	annotationsBudget := aggregates.MaxAnnotationsBytes
	a := map[string]string{}
	for i := 0; annotationsBudget > 0; i++ {
		key := fmt.Sprintf("k%0*d", aggregates.MaxAnnotationKeyBytes-1, i)
		size := min(aggregates.MaxAnnotationValueBytes, annotationsBudget-len(key))
		a[key] = strings.Repeat("<", size)
		annotationsBudget -= len(key) + size
	}
	return events.Deploy{
		RevisionID: r1,
		Command:    strings.Repeat("<", aggregates.MaxCommandLineBytes),
		Code: events.CodeOverrides{
			MachineType: ptr(sized(aggregates.MaxMachineTypeBytes, "M")), MaxMultiplexing: ptr(aggregates.MaxCount),
			StartupTimeout: ptr(aggregates.MaxDuration),
		},
		Runtime: events.RuntimeOverrides{
			KeepAlive: ptr(aggregates.MaxDuration), MinConcurrency: ptr(aggregates.MaxCount), MaxConcurrency: ptr(aggregates.MaxCount),
			ConcurrencyBuffer: ptr(aggregates.MaxCount), RequestTimeout: ptr(aggregates.MaxDuration),
		},
		ResetScale:  true,
		Strategy:    events.StrategyRecreate,
		Message:     strings.Repeat("<", aggregates.MaxMessageBytes),
		Annotations: a,
	}
}

func largestDeploySpecs() []spec {
	d := largestDeploy()
	ev := createdBy(d)
	ev.Strategy = events.StrategyRecreate
	return []spec{{name: "the_largest_valid_deploy_is_accepted", when: d, then: evs(ev)}}
}

func concat(parts ...[]spec) []spec {
	var all []spec
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// limitSpecs are the size and character limits of every command field.
func limitSpecs() []spec {
	return concat(commandLineSpecs(), messageSpecs(), annotationSpecs(), machineTypeSpecs(), idSpecs(),
		reasonSpecs(), runnerNumberSpecs(), largestDeploySpecs())
}

func TestLimits(t *testing.T) { t.Parallel(); run(t, limitSpecs()) }
