package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// Exec runs one ctrforensics command line (arguments without the program
// name) and returns its standard output, its standard error and its exit
// status.
type Exec func(ctx context.Context, args []string) (stdout, stderr []byte, exit int, err error)

// ParsePlan decodes a collector's --plan.
func ParsePlan(s string) (Plan, error) {
	var p Plan
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("collector plan: %w", err)
	}
	if len(p.Targets) == 0 {
		return p, fmt.Errorf("collector plan: no targets")
	}
	if p.Parallel < 1 {
		p.Parallel = 1
	}
	return p, nil
}

// RunPlan collects the plan's targets, at most plan.Parallel at once, each
// through run, and returns their results in plan order; emit (which may be
// nil) is called with each result as it comes, one at a time.
func RunPlan(ctx context.Context, plan Plan, run Exec, emit func(Result)) []Result {
	results := make([]Result, len(plan.Targets))
	sem := make(chan struct{}, plan.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, pt := range plan.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := runTarget(ctx, pt, run)
			mu.Lock()
			defer mu.Unlock()
			results[i] = r
			if emit != nil {
				emit(r)
			}
		}()
	}
	wg.Wait()
	return results
}

// collectSummary is the part of `collect --format json` a result needs.
type collectSummary struct {
	Output      string `json:"output"`
	CustodyHead string `json:"custody_head"`
}

// runTarget runs one target's collect and reads its summary.
func runTarget(ctx context.Context, pt PlanTarget, run Exec) Result {
	r := Result{Version: ResultVersion, Target: pt.Target, ContainerID: pt.ContainerID, Output: pt.Output, Result: Failed}
	if ctx.Err() != nil {
		r.Exit, r.Error = 130, "not started: the collector was interrupted"
		return r
	}
	stdout, stderr, exit, err := run(ctx, pt.Args)
	r.Exit = exit
	switch {
	case err != nil:
		r.Exit, r.Error = 2, err.Error()
	case exit != 0:
		r.Error = lastLine(string(stderr))
	default:
		var s collectSummary
		if err := json.Unmarshal(stdout, &s); err != nil || s.CustodyHead == "" {
			r.Error = fmt.Sprintf("collect printed no summary: %q", lastLine(string(stdout)))
			return r
		}
		r.Result, r.CustodyHead = Collected, s.CustodyHead
		if s.Output != "" {
			r.Output = s.Output
		}
	}
	return r
}
