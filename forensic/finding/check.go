package finding

// Check is one rule of a catalog with the predicate that fires it: the shape
// every rule-based command shares (scan's file rules, audit's runtime spec
// rules, packages' integrity results). T is what a check looks at: a file
// and its content, a runtime spec, an integrity result.
type Check[T any] struct {
	Rule
	// Fire returns the rule's hits on in, none when the rule does not apply.
	Fire func(in T) []Hit
}

// Hit is one firing of a check: what a finding says beyond its rule.
type Hit struct {
	// Severity is the hit's own severity; zero means the rule's.
	Severity Severity
	// Reason says in one line why the rule fired, naming the evidence.
	Reason string
	// Where names the place in the input that fired (a spec field such as
	// "mounts[2]"), when the input has places.
	Where string
	// Evidence is the matched text or value, at most a line.
	Evidence string
}

// Catalog returns the rules of checks, in their order.
func Catalog[T any](checks []Check[T]) []Rule {
	out := make([]Rule, len(checks))
	for i, c := range checks {
		out[i] = c.Rule
	}
	return out
}

// Run fires every check on in, in catalog order, and calls emit for each hit
// with its rule; the hit's Severity is resolved (the rule's when the hit has
// none).
func Run[T any](checks []Check[T], in T, emit func(r *Rule, h Hit)) {
	for i := range checks {
		c := &checks[i]
		for _, h := range c.Fire(in) {
			if h.Severity == 0 {
				h.Severity = c.Severity
			}
			emit(&c.Rule, h)
		}
	}
}
