// Package history examines an OCI image's configuration and layer history,
// as `docker image history --no-trunc` shows it, without running the image.
//
// It is meant for incident responders handling a suspect image whose
// entrypoint may be hostile: Analyze reads the build steps recorded in the
// config's history (classic builder, BuildKit, Buildah and Kaniko spellings of
// created_by), the final runtime config and the list of layers, and reports
// findings such as RUN steps that pipe a download into a shell, ADD from a
// URL, setuid chmods, LD_PRELOAD, PATH hijacking, baked-in secrets, an
// entrypoint in /tmp, or a history that does not match the layers. Nothing is
// executed and nothing is fetched; the rules are heuristics over text.
//
// Secret values are never reported: every Reason and Evidence is scrubbed of
// the values the secret rules detected before it is returned.
//
// WriteSARIF renders findings as SARIF 2.1.0 for code-scanning consumers.
package history
