// Package kube is the Kubernetes side of ctrforensics: it resolves pods to the
// containerd containers behind them (pod -> node -> containerd:// ID, from the
// pod's status) and collects them through one short-lived collector pod per
// node, which runs this same binary's `collect` against the node's containerd.
//
// Invariants:
//   - The only objects a run creates are its collector pods, in the collector
//     namespace, labelled with the run; Collect deletes every one it created
//     before it returns, also when the run fails or is cancelled, and reports
//     each (name, UID, node, deletion) so the change to the cluster is on
//     record. Each bag records the run (bundle.Orchestration).
//   - Only containers the API server names as containerd's (containerd://ID)
//     are collected, and a collector collects exactly that ID: collect refuses
//     a container other than the one its orchestration record names.
//   - One target failing never stops the others: failures are per-target
//     results, never an early return.
//   - The collector pods need no API access: no service account token is
//     mounted in them.
package kube
