package bagit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseManifest reads a payload or tag manifest, recording every line's
// digest. Malformed lines are Problems; the error is for r failing.
func (v *verifier) parseManifest(ctx context.Context, p string, r io.Reader) error {
	alg, tag, _ := parseManifestName(p)
	i, known := lookupAlg(alg)
	if !known {
		v.problem(p, checkManifest, "unsupported algorithm %q; its digests are not checked", alg)
		_, err := io.Copy(io.Discard, r)
		return err
	}
	if v.lines == nil {
		v.lines = bufio.NewReaderSize(r, maxLine)
	}
	v.lines.Reset(r)
	defer v.lines.Reset(nil)
	lines := &lineReader{br: v.lines}
	for {
		if lines.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, tooLong, err := lines.next()
		if line == nil && err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if tooLong {
			v.problem(p, checkManifest, "line %d: longer than %d bytes", lines.n, maxLine)
			continue
		}
		v.manifestLine(p, i, tag, lines.n, line)
	}
	region := regionPayload
	if tag {
		region = regionTag
	}
	v.parsed[region] = v.parsed[region].with(i)
	return nil
}

// lineReader splits a stream into lines of at most maxLine bytes, without
// their line ending (LF or CRLF).
type lineReader struct {
	br *bufio.Reader
	n  int // number of the line last returned
}

// next returns the next line; tooLong reports a line that was skipped. The
// line is nil only with an error; io.EOF ends the stream.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	line, err = l.br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) && (len(line) == 0 || !errors.Is(err, io.EOF)) {
		return nil, false, err
	}
	l.n++
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = l.br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, err
		}
		return []byte{}, true, nil
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, false, nil
}

// manifestLine records one manifest line, "<hex digest> <whitespace> <path>".
func (v *verifier) manifestLine(p string, i algIndex, tag bool, n int, line []byte) {
	var buf [maxDigestSize]byte
	sum, path, why := parseManifestLine(line, buf[:algSpecs[i].size])
	if why == "" {
		switch payload := strings.HasPrefix(path, payloadRoot); {
		case tag && payload:
			why = "a tag manifest may not list the payload file " + path
		case !tag && !payload:
			why = path + " is not under data/"
		}
	}
	if why != "" {
		v.problem(p, checkManifest, "line %d: %s", n, why)
		return
	}
	idx := v.tab.lookup(path)
	e := v.tab.at(idx)
	if e.listed.has(i) {
		v.problem(p, checkManifest, "line %d: %s is listed twice", n, path)
		return
	}
	e.listed = e.listed.with(i)
	switch e.state[i] {
	case stGot:
		v.compare(path, i, v.tab.digest(i, e.slot[i]), sum)
		e.state[i] = stDone
	case stNone:
		e.slot[i], e.state[i] = v.tab.store(i, sum), stWant
	}
}

// parseManifestLine decodes the digest of a manifest line into sum and
// returns it with the line's path, or why the line is malformed.
func parseManifestLine(line, sum []byte) ([]byte, string, string) {
	j := bytes.IndexAny(line, " \t")
	if j <= 0 {
		return nil, "", "no digest, whitespace and path"
	}
	if j != 2*len(sum) {
		return nil, "", fmt.Sprintf("digest has %d characters, want %d", j, 2*len(sum))
	}
	if _, err := hex.Decode(sum, line[:j]); err != nil {
		return nil, "", "digest is not hexadecimal"
	}
	rest := bytes.TrimLeft(line[j:], " \t")
	if len(rest) == 0 {
		return nil, "", "no path after the digest"
	}
	if !utf8.Valid(rest) {
		return nil, "", "path is not UTF-8"
	}
	path := decodePath(string(rest))
	if why := checkRel(path); why != "" {
		return nil, "", fmt.Sprintf("%s: %q", why, path)
	}
	return sum, path, ""
}

// checkBagitTxt checks the bag declaration.
func (v *verifier) checkBagitTxt(cb *capBuffer) {
	if cb.over {
		v.problem(bagitTxt, checkBagit, "larger than %d MiB", maxKeep>>20)
		return
	}
	text := string(cb.buf)
	if strings.HasPrefix(text, "\ufeff") {
		v.problem(bagitTxt, checkBagit, "starts with a byte order mark")
		text = strings.TrimPrefix(text, "\ufeff")
	}
	fields, bad := parseFields(text)
	for _, b := range bad {
		v.problem(bagitTxt, checkBagit, "%s", b)
	}
	want := []Field{{"BagIt-Version", bagitVersion}, {"Tag-File-Character-Encoding", "UTF-8"}}
	if len(fields) != len(want) {
		v.problem(bagitTxt, checkBagit, "has %d fields, want BagIt-Version and Tag-File-Character-Encoding", len(fields))
	}
	for k := 0; k < len(fields) && k < len(want); k++ {
		f := fields[k]
		if f.Label != want[k].Label || !strings.EqualFold(f.Value, want[k].Value) {
			v.problem(bagitTxt, checkBagit, "line %d is %q, want %q", k+1, f.Label+": "+f.Value, want[k].Label+": "+want[k].Value)
		}
	}
}

// parseBagInfo parses bag-info.txt into Result.Info.
func (v *verifier) parseBagInfo(cb *capBuffer) {
	if cb.over {
		v.problem(bagInfoTxt, checkBagit, "larger than %d MiB; not parsed", maxKeep>>20)
		return
	}
	fields, bad := parseFields(string(cb.buf))
	for _, b := range bad {
		v.problem(bagInfoTxt, checkBagit, "%s", b)
	}
	v.res.Info = fields
	for _, f := range fields {
		if strings.EqualFold(f.Label, labelOxum) {
			v.oxum = append(v.oxum, f.Value)
		}
	}
}

// parseFields parses "Label: value" lines; a line starting with a space or a
// tab continues the previous value. It returns the fields and what is
// malformed.
func parseFields(text string) ([]Field, []string) {
	var fields []Field
	var bad []string
	if !utf8.ValidString(text) {
		bad = append(bad, "not UTF-8")
	}
	text = strings.TrimSuffix(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if text == "" {
		return nil, bad
	}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line != "" && (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			last := &fields[len(fields)-1]
			last.Value += " " + strings.TrimLeft(line, " \t")
			continue
		}
		label, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(label) == "" || strings.TrimSpace(label) != label {
			bad = append(bad, fmt.Sprintf("line %d is not \"Label: value\"", n+1))
			continue
		}
		fields = append(fields, Field{Label: label, Value: strings.TrimLeft(value, " \t")})
	}
	return fields, bad
}

// verifyOxum compares Payload-Oxum with the payload found.
func (v *verifier) verifyOxum() {
	if len(v.oxum) > 1 {
		v.problem(bagInfoTxt, checkOxum, "%s appears %d times", labelOxum, len(v.oxum))
	}
	if len(v.oxum) == 0 {
		return
	}
	octets, streams, ok := strings.Cut(strings.TrimSpace(v.oxum[0]), ".")
	o, err1 := strconv.ParseInt(octets, 10, 64)
	s, err2 := strconv.ParseInt(streams, 10, 64)
	if !ok || err1 != nil || err2 != nil || o < 0 || s < 0 {
		v.problem(bagInfoTxt, checkOxum, "%s %q is not <octets>.<streams>", labelOxum, v.oxum[0])
		return
	}
	if o != v.res.PayloadBytes || s != v.res.PayloadFiles {
		v.problem(bagInfoTxt, checkOxum, "%s is %d.%d, payload has %d bytes in %d files",
			labelOxum, o, s, v.res.PayloadBytes, v.res.PayloadFiles)
	}
}
