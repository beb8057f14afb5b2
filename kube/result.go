package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
)

// ResultVersion marks a result line among the other lines of a collector's
// log.
const ResultVersion = "v1"

// Result states of a target.
const (
	Collected = "collected"
	Failed    = "failed"
)

// Result is the outcome of one target: the JSON line a collector prints on
// its standard output (and puts in its termination message), and what
// `k8s collect` reports.
type Result struct {
	Version     string `json:"ctrforensics_result"`
	Target      string `json:"target"`
	ContainerID string `json:"container_id,omitempty"`
	// Output is where the bag went (s3://BUCKET/KEY).
	Output string `json:"output,omitempty"`
	// CustodyHead is the bag's custody chain head, to record elsewhere.
	CustodyHead string `json:"custody_head,omitempty"`
	Result      string `json:"result"`
	// Exit is collect's exit status; Error its last error line, or why it
	// did not run.
	Exit  int    `json:"exit"`
	Error string `json:"error,omitempty"`
	// Node and CollectorPod are filled in by the orchestrator.
	Node         string `json:"node,omitempty"`
	CollectorPod string `json:"collector_pod,omitempty"`
	CollectorUID string `json:"collector_uid,omitempty"`
}

// OK tells whether the target was collected.
func (r Result) OK() bool { return r.Result == Collected }

// failure is the failed result of t.
func failure(t Target, msg string) Result {
	return Result{Version: ResultVersion, Target: t.Name(), ContainerID: t.ContainerID, Node: t.Node, Result: Failed, Exit: 2, Error: msg}
}

// ParseResults returns the result lines among text's lines (a termination
// message or a pod's log), last line of a target winning.
func ParseResults(text []byte) map[string]Result {
	out := map[string]Result{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var r Result
		if json.Unmarshal(line, &r) == nil && r.Version == ResultVersion && r.Target != "" {
			out[r.Target] = r
		}
	}
	return out
}

// TerminationMessage returns the result lines that fit in a termination
// message, whole lines only; the others are read from the pod's log.
func TerminationMessage(results []Result) []byte {
	var b bytes.Buffer
	for _, r := range results {
		line, err := json.Marshal(r)
		if err != nil || b.Len()+len(line)+1 > TerminationMessageMax {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// lastLine is the last non-empty line of s, for an error message.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
