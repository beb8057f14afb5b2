package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/internal/atomicfile"
)

// PartialMarker is in the name of every bundle still being written: the
// partial output PATH.partial-XXXXXXXX next to the final PATH (see
// Writer.Partial).
const PartialMarker = ".partial-"

// CreateOptions tune Create.
type CreateOptions struct {
	// Algorithms of the manifests; none means sha256 and sha512.
	Algorithms []bagit.Algorithm
	// Progress, when set, is called about twice a second with the payload
	// written so far, until the bundle is sealed or abandoned.
	Progress func(files, bytes int64)
}

// Writer writes a bundle: Create, Put* the payload, Seal, then Commit (or
// Abandon on any failure). The bag is built under a partial name next to the
// final path and only Commit makes it appear there, as a directory, a .tar
// or a .tar.gz, so that the final path never holds an unsealed bundle. Put
// methods are safe for concurrent use, but for a bundle made by
// CreateStream, which takes one file at a time and Store instead of Commit.
type Writer struct {
	out  *output // nil for a stream
	bag  *bagit.Writer
	stop func()
	// stream, when set, is the sink the bag is written to as it is built.
	stream *stream
}

// Create starts a bundle that Commit will put at path: a directory (which
// must not exist or be empty), or a file ending in .tar, .tar.gz or .tgz
// (which must not exist).
func Create(path string, opts CreateOptions) (*Writer, error) {
	out, err := newOutput(path)
	if err != nil {
		return nil, err
	}
	bag, err := bagit.Create(out.bag, opts.Algorithms...)
	if err != nil {
		out.abandon()
		return nil, err
	}
	return &Writer{out: out, bag: bag, stop: reportProgress(bag, opts.Progress)}, nil
}

// Partial is the path where the bundle is built until Commit. A caller that
// records it elsewhere lets a later cleanup remove what a killed run left
// (see RemovePartial).
func (w *Writer) Partial() string {
	if w.out == nil {
		return "" // a stream: nothing local
	}
	return w.out.partial
}

// PutJSON writes v, indented, as the payload file name (a bag path under
// PayloadDir, such as ContainerJSON).
func (w *Writer) PutJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	b = append(b, '\n')
	return w.PutSized(name, int64(len(b)), func(f io.Writer) error {
		_, err := f.Write(b)
		return err
	})
}

// PutStream writes the payload file name (a bag path under PayloadDir) with
// fill. In a bundle made by CreateStream, fill is called twice, first to
// count what it writes (a stream needs each file's size before its content):
// it must write the same bytes each time, from memory; content read from
// files or another store goes through PutSized.
func (w *Writer) PutStream(name string, fill func(io.Writer) error) error {
	size := int64(-1)
	if w.stream != nil {
		var n counter
		if err := fill(&n); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		size = n.n
	}
	return w.PutSized(name, size, fill)
}

// PutSized writes the payload file name (a bag path under PayloadDir), of
// size bytes (negative: unknown, refused by a stream), with fill, which
// must write exactly that many.
func (w *Writer) PutSized(name string, size int64, fill func(io.Writer) error) error {
	rel, err := payloadRel(name)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	f, err := w.bag.CreatePayloadSized(rel, size)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// counter counts the bytes written to it.
type counter struct{ n int64 }

func (c *counter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// Sealed describes a sealed bundle.
type Sealed struct {
	// Head is the custody chain's head digest, to record elsewhere.
	Head string
	// Signed says the bundle carries an attestation.
	Signed bool
}

// Seal completes the acquisition record (End, CollectedAt and CollectedBy,
// from now and acq.Examiner) and writes it, then bag-info.txt, the manifests
// and tag manifests, and starts the chain of custody with the collected
// event. With a key it signs that event and attests the tag manifests and
// the event's digest, so that the signed event cannot be replaced by an
// unsigned or edited one.
// Nothing may be put after Seal.
func (w *Writer) Seal(acq *Acquisition, key ed25519.PrivateKey) (*Sealed, error) {
	w.stop()
	end := time.Now()
	acq.End, acq.CollectedAt, acq.CollectedBy = forensic.FormatTime(end), forensic.FormatTime(end), acq.Examiner
	b, err := json.MarshalIndent(acq, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode acquisition record: %w", err)
	}
	if err := w.bag.WriteTag(AcquisitionFile, append(b, '\n')); err != nil {
		return nil, err
	}
	if err := w.bag.Finish(bagInfo(acq)); err != nil {
		return nil, err
	}
	tm := w.bag.TagManifest(bagit.SHA256)
	if tm == nil {
		return nil, errors.New("seal bundle: the bag has no sha256 tag manifest")
	}
	bag := digestOf(tm)
	line, err := custody.Next(nil, end, custody.ActionCollected, acq.Examiner, acq.Note, bag, key)
	if err != nil {
		return nil, err
	}
	if key != nil {
		if err := w.attest(acq, custody.LineDigest(line), key); err != nil {
			return nil, err
		}
	}
	if err := w.bag.WriteUnlisted(CustodyFile, line); err != nil {
		return nil, fmt.Errorf("write custody chain: %w", err)
	}
	if w.stream != nil {
		if w.stream.chain, err = custody.Read(bytes.NewReader(line)); err != nil {
			return nil, err
		}
		w.stream.bag = bag
	}
	return &Sealed{Head: custody.LineDigest(line), Signed: key != nil}, nil
}

// bagInfo returns the bag-info.txt fields of an acquisition.
func bagInfo(acq *Acquisition) []bagit.Field {
	info := []bagit.Field{
		{Label: "Bagging-Date", Value: acq.CollectedAt[:10]},
		{Label: "Bag-Software-Agent", Value: "ctrforensics " + acq.Tool.Version + " (commit " + acq.Tool.Commit + ")"},
		{Label: "External-Description", Value: "containerd container " + acq.Container.ID + " (namespace " +
			acq.Containerd.Namespace + ", image " + acq.Container.Image + ") on " + acq.Host.Hostname},
		{Label: "Contact-Name", Value: acq.Examiner},
	}
	if acq.Case != "" {
		info = append(info, bagit.Field{Label: "External-Identifier", Value: acq.Case})
	}
	if acq.BagGroup != "" {
		info = append(info, bagit.Field{Label: "Bag-Group-Identifier", Value: forensic.EscapePath(acq.BagGroup)})
	}
	info = append(info, podInfo(acq.Pod)...)
	if acq.Note != "" {
		info = append(info, bagit.Field{Label: "Internal-Sender-Description", Value: strings.ReplaceAll(acq.Note, "\n", " ")})
	}
	return info
}

// podInfo returns the bag-info.txt fields naming a Kubernetes pod, one
// Kubernetes-Pod-Label field per label in key order. Values are escaped as
// paths are (a line break cannot end a field early).
func podInfo(p *forensic.Pod) []bagit.Field {
	if p == nil || p.IsZero() {
		return nil
	}
	esc := forensic.EscapePath
	info := []bagit.Field{{Label: "Kubernetes-Pod", Value: esc(p.Namespace) + "/" + esc(p.Name)}}
	add := func(label, value string) {
		if value != "" {
			info = append(info, bagit.Field{Label: label, Value: esc(value)})
		}
	}
	add("Kubernetes-Pod-UID", p.UID)
	add("Kubernetes-Container-Name", p.Container)
	add("Kubernetes-Pod-Sandbox-ID", p.SandboxID)
	if p.Sandbox {
		add("Kubernetes-Pod-Sandbox", "true (this is the pod's sandbox container)")
	}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		add("Kubernetes-Pod-Label", k+"="+p.Labels[k])
	}
	return info
}

// attest signs an in-toto statement whose subjects are the tag manifests and
// whose predicate names the first custody event by digest, as a DSSE
// envelope.
func (w *Writer) attest(acq *Acquisition, firstEvent string, key ed25519.PrivateKey) error {
	st := &attest.Statement{Type: attest.StatementType, PredicateType: attest.PredicateType}
	for _, m := range []struct {
		name string
		alg  bagit.Algorithm
	}{{TagManifest, bagit.SHA256}, {TagManifestSHA512, bagit.SHA512}} {
		name, b := m.name, w.bag.TagManifest(m.alg)
		if b == nil {
			continue
		}
		st.Subject = append(st.Subject, attest.Subject{Name: name, Digest: map[string]string{"sha256": strings.TrimPrefix(digestOf(b), "sha256:")}})
	}
	pred, err := json.Marshal(predicate{Case: acq.Case, Examiner: acq.Examiner, Container: acq.Container.ID,
		Image: acq.Container.Image, Host: acq.Host.Hostname, CollectedAt: acq.CollectedAt, CustodyFirstEvent: firstEvent})
	if err != nil {
		return fmt.Errorf("sign bundle: %w", err)
	}
	st.Predicate = pred
	env, err := attest.SignStatement(st, key)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return fmt.Errorf("sign bundle: %w", err)
	}
	return w.bag.WriteUnlisted(AttestationFile, append(b, '\n'))
}

// predicate is the predicate of the signed statement.
type predicate struct {
	Case        string `json:"case"`
	CollectedAt string `json:"collected_at"`
	Container   string `json:"container"`
	// CustodyFirstEvent is the digest of the collected event's line.
	CustodyFirstEvent string `json:"custody_first_event,omitempty"`
	Examiner          string `json:"examiner"`
	Host              string `json:"host"`
	Image             string `json:"image"`
}

// Commit moves or packs the sealed bundle to its final path and returns that
// path. On error the caller must still Abandon.
func (w *Writer) Commit() (string, error) {
	if w.out == nil {
		return "", errors.New("commit bundle: a bundle made for a sink is stored, not committed")
	}
	if err := w.bag.Close(); err != nil {
		return "", err
	}
	if err := w.out.commit(); err != nil {
		return "", err
	}
	return w.out.final, nil
}

// Abandon removes everything the writer wrote; the final path is untouched.
func (w *Writer) Abandon() {
	w.stop()
	if w.stream != nil {
		w.stream.up.Abort()
		return
	}
	w.out.abandon()
}

// reportProgress calls fn twice a second until the returned stop is called;
// stop may be called more than once.
func reportProgress(w *bagit.Writer, fn func(files, bytes int64)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn(w.Progress())
			}
		}
	}()
	stopped := false
	return func() {
		if !stopped {
			stopped = true
			close(done)
			<-finished
		}
	}
}

// output is where a bundle is written: the bag is built in a directory next
// to the final path (partial/NAME, NAME being the final name without .tar or
// .tar.gz, which a tar keeps as its top-level directory) and moved or packed
// there once sealed.
type output struct {
	final   string
	partial string
	bag     string
	// tar and gzip say the final path is a tar, compressed or not.
	tar, gzip bool
}

func newOutput(path string) (*output, error) {
	if path == "" {
		return nil, errors.New("no output path: give a directory, a .tar or a .tar.gz file")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	o := &output{final: abs}
	switch {
	case strings.HasSuffix(abs, ".tar"):
		o.tar = true
	case strings.HasSuffix(abs, ".tar.gz"), strings.HasSuffix(abs, ".tgz"):
		o.tar, o.gzip = true, true
	}
	if err := o.checkFinal(); err != nil {
		return nil, err
	}
	return o, o.makePartial()
}

// makePartial names and creates the partial directory next to o.final.
func (o *output) makePartial() error {
	abs := o.final
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	o.partial = abs + PartialMarker + hex.EncodeToString(id[:])
	name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(filepath.Base(abs), ".tar"), ".tar.gz"), ".tgz")
	o.bag = filepath.Join(o.partial, name)
	if err := os.Mkdir(o.partial, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.partial, err)
	}
	return nil
}

// checkFinal refuses to overwrite anything but an empty directory.
func (o *output) checkFinal() error {
	fi, err := os.Lstat(o.final)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return err
	case o.tar || !fi.IsDir():
		return fmt.Errorf("output %s already exists: pick a new name", o.final)
	}
	entries, err := os.ReadDir(o.final)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("output directory %s is not empty: pick a new or empty one", o.final)
	}
	return nil
}

// commit moves or packs the sealed bag to its final path.
func (o *output) commit() error {
	if err := o.checkFinal(); err != nil {
		return err
	}
	if !o.tar {
		os.Remove(o.final) // an empty directory given as output
		if err := os.Rename(o.bag, o.final); err != nil {
			return fmt.Errorf("move bundle to %s: %w", o.final, err)
		}
		if err := os.Remove(o.partial); err != nil {
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(o.final))
	}
	err := atomicfile.WriteVia(o.final, packTemp(o.partial), func(f *os.File) error {
		return bagit.Pack(o.bag, f, o.gzip)
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(o.partial)
}

// abandon removes what an unfinished bundle wrote.
func (o *output) abandon() { RemovePartial(o.partial) }

// packTemp names the tar being packed from a partial bundle.
func packTemp(partial string) string { return partial + ".tar" }

// RemovePartial removes the partial output a Writer left at partial (the path
// Writer.Partial returned), as a killed run leaves it: the bag directory and
// the tar being packed. It refuses a path that is not a partial output's and
// reports whether anything was there.
func RemovePartial(partial string) bool {
	if !strings.Contains(filepath.Base(partial), PartialMarker) {
		return false
	}
	_, derr := os.Lstat(partial)
	_, terr := os.Lstat(packTemp(partial))
	os.RemoveAll(partial)
	os.Remove(packTemp(partial))
	return derr == nil || terr == nil
}

// digestOf returns "sha256:<hex>" of b, or "" for nil.
func digestOf(b []byte) string {
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
