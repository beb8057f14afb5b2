package browse

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/docker/go-units"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Keys is the help --help prints and the view's last line abbreviates.
const Keys = `Keys:
  up/down, k/j, pgup/pgdn, home/end   move in the focused pane
  tab                                 switch focus between the layers and the tree
  enter                               view the selected file's bytes (from the layer that holds them)
  x                                   in the viewer: switch between text and hex
  /                                   filter the tree by path (substring; enter applies, esc clears)
  a, c, d, h                          show only added, changed, deleted, hidden entries (toggles; none: all)
  q, esc                              leave the viewer, clear the filter, or quit
Marks: A added, C changed, D deleted by the selected layer; H shipped by it but hidden by a later one;
! an image finding names the entry (the detail line says which).`

// maxView is the most bytes the viewer reads of a file.
const maxView = 1 << 20

// Run shows data until the user quits or ctx is done.
func Run(ctx context.Context, data *Data, in io.Reader, out io.Writer) error {
	m := newModel(ctx, data)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	_, err := p.Run()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("browse: %w", err)
	}
	return nil
}

type focus int

const (
	focusLayers focus = iota
	focusTree
)

type model struct {
	ctx      context.Context
	d        *Data
	findings map[string]string
	w, h     int
	// layers lists the selectable layers, bottom first; the container's
	// changes are the last in container mode.
	layers   []int
	layerPos int
	focus    focus
	all      []row // the tree of the selected layer
	shown    []int // indexes into all after filtering
	pos, top int
	ltop     int
	filter   string
	editing  bool
	kinds    map[mark]bool
	// viewer
	viewing bool
	vrow    row
	vdata   []byte
	verr    error
	hex     bool
	vtop    int
}

func newModel(ctx context.Context, d *Data) *model {
	var fs []string
	fs = append(fs, d.ImageFindings...)
	for _, l := range d.Layers {
		fs = append(fs, l.Findings...)
	}
	m := &model{ctx: ctx, d: d, findings: findingsByPath(fs), w: 80, h: 24, kinds: map[mark]bool{}, focus: focusLayers}
	for i := range d.Layers {
		m.layers = append(m.layers, i)
	}
	if d.Container != nil {
		m.layers = append(m.layers, ContainerLayer)
	}
	m.layerPos = len(m.layers) - 1
	m.rebuild()
	return m
}

func (m *model) selected() int {
	if len(m.layers) == 0 {
		return 0
	}
	return m.layers[m.layerPos]
}

// rebuild recomputes the tree for the selected layer and refilters it.
func (m *model) rebuild() {
	if len(m.layers) == 0 {
		m.all = nil
	} else {
		m.all = m.d.rows(m.selected(), m.findings)
	}
	m.refilter()
}

func (m *model) refilter() {
	m.shown = m.shown[:0]
	any := len(m.kinds) > 0
	for i, r := range m.all {
		if any && !m.kinds[r.mark] {
			continue
		}
		if m.filter != "" && !strings.Contains(r.path, m.filter) {
			continue
		}
		m.shown = append(m.shown, i)
	}
	m.pos, m.top = 0, 0
}

func (m *model) Init() tea.Cmd { return nil }

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
	case tea.KeyMsg:
		// Keys typed faster than they are read arrive as one message.
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			var cmd tea.Cmd
			for _, r := range msg.Runes {
				if c := m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}); c != nil {
					cmd = c
				}
			}
			return m, cmd
		}
		return m, m.key(msg)
	}
	return m, nil
}

func (m *model) key(k tea.KeyMsg) tea.Cmd {
	s := k.String()
	switch {
	case m.editing:
		m.editFilter(k)
	case m.viewing:
		m.viewerKey(s)
	case s == "ctrl+c" || s == "q" || s == "esc":
		if m.filter != "" || len(m.kinds) > 0 {
			m.filter, m.kinds = "", map[mark]bool{}
			m.refilter()
			return nil
		}
		return tea.Quit
	case s == "tab":
		m.focus = 1 - m.focus
	case s == "/":
		m.editing, m.focus = true, focusTree
	case s == "a" || s == "c" || s == "d" || s == "h":
		mk := mark(strings.ToUpper(s)[0])
		if m.kinds[mk] {
			delete(m.kinds, mk)
		} else {
			m.kinds[mk] = true
		}
		m.focus = focusTree
		m.refilter()
	case s == "enter":
		m.openViewer()
	default:
		m.move(s)
	}
	return nil
}

func (m *model) editFilter(k tea.KeyMsg) {
	switch k.Type {
	case tea.KeyEnter:
		m.editing = false
	case tea.KeyEsc:
		m.editing, m.filter = false, ""
	case tea.KeyBackspace:
		if m.filter != "" {
			_, n := utf8.DecodeLastRuneInString(m.filter)
			m.filter = m.filter[:len(m.filter)-n]
		}
	case tea.KeyRunes, tea.KeySpace:
		m.filter += string(k.Runes)
	}
	m.refilter()
}

// move moves the cursor of the focused pane.
func (m *model) move(s string) {
	step := map[string]int{"up": -1, "k": -1, "down": 1, "j": 1, "pgup": -10, "pgdown": 10, "home": -1 << 30, "end": 1 << 30}[s]
	if step == 0 {
		return
	}
	if m.focus == focusLayers {
		p := min(max(m.layerPos+step, 0), len(m.layers)-1)
		if p != m.layerPos && p >= 0 {
			m.layerPos = p
			m.rebuild()
		}
		return
	}
	m.pos = min(max(m.pos+step, 0), max(len(m.shown)-1, 0))
}

func (m *model) openViewer() {
	if m.focus != focusTree || len(m.shown) == 0 {
		return
	}
	r := m.all[m.shown[m.pos]]
	m.viewing, m.vrow, m.vdata, m.verr, m.vtop = true, r, nil, nil, 0
	switch {
	case r.from == noRead:
		m.verr = fmt.Errorf("%s is a %s: nothing to show", forensic.EscapePath(r.path), r.typ)
	case m.d.Read == nil:
		m.verr = fmt.Errorf("no content available")
	default:
		m.vdata, m.verr = m.d.Read(m.ctx, r.path, r.from, maxView)
	}
	m.hex = !isText(m.vdata)
}

func (m *model) viewerKey(s string) {
	switch s {
	case "q", "esc", "enter":
		m.viewing = false
	case "x":
		m.hex, m.vtop = !m.hex, 0
	case "up", "k":
		m.vtop = max(m.vtop-1, 0)
	case "down", "j":
		m.vtop++
	case "pgup":
		m.vtop = max(m.vtop-10, 0)
	case "pgdown", " ":
		m.vtop += 10
	case "home":
		m.vtop = 0
	}
}

// isText says whether b reads as text: UTF-8 without control bytes other
// than newlines and tabs.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

var (
	palette  = []lipgloss.Color{"39", "208", "42", "201", "226", "45", "165", "118"}
	bold     = lipgloss.NewStyle().Bold(true)
	inverse  = lipgloss.NewStyle().Reverse(true)
	dim      = lipgloss.NewStyle().Faint(true)
	red      = lipgloss.NewStyle().Foreground(lipgloss.Color("196"))
	ctrColor = lipgloss.Color("15")
)

func layerStyle(l int) lipgloss.Style {
	if l == ContainerLayer {
		return lipgloss.NewStyle().Foreground(ctrColor).Bold(true)
	}
	return lipgloss.NewStyle().Foreground(palette[l%len(palette)])
}

func (m *model) View() string {
	if m.viewing {
		return m.viewerView()
	}
	var b strings.Builder
	line := func(s string, st *lipgloss.Style) {
		s = clipTo(s, m.w)
		if st != nil {
			s = st.Render(s)
		}
		b.WriteString(s + "\n")
	}
	line("ctrforensics browse "+forensic.EscapePath(m.d.Title)+"   (read-only)", &bold)
	lh := min(len(m.layers), max(3, m.h/4))
	m.ltop = window(m.layerPos, m.ltop, lh, len(m.layers))
	for i := m.ltop; i < m.ltop+lh && i < len(m.layers); i++ {
		s := m.layerLine(m.layers[i])
		cur := "  "
		if i == m.layerPos {
			cur = "> "
		}
		st := layerStyle(m.layers[i])
		if i == m.layerPos && m.focus == focusLayers {
			st = st.Reverse(true)
		}
		line(cur+s, &st)
	}
	line(m.layerDetail(), &dim)
	th := max(m.h-lh-5, 1)
	m.top = window(m.pos, m.top, th, len(m.shown))
	for i := m.top; i < m.top+th; i++ {
		if i >= len(m.shown) {
			b.WriteString("\n")
			continue
		}
		r := m.all[m.shown[i]]
		st := layerStyle(r.layer)
		if r.mark == markDeleted {
			st = red
		}
		if i == m.pos && m.focus == focusTree {
			st = st.Reverse(true)
		}
		line(m.treeLine(r), &st)
	}
	line(m.entryDetail(), &dim)
	help := "↑↓ move  tab pane  enter view  / filter  a c d h kinds  q quit"
	if m.editing {
		help = "filter: " + m.filter + "▏ (enter apply, esc clear)"
	} else if m.filter != "" || len(m.kinds) > 0 {
		help = fmt.Sprintf("filter %q kinds %s  (esc clears)  ", m.filter, m.kindList()) + help
	}
	st := inverse
	b.WriteString(st.Render(clipTo(help, m.w)))
	return b.String()
}

func (m *model) kindList() string {
	s := ""
	for _, k := range []mark{markAdded, markChanged, markDeleted, markHidden} {
		if m.kinds[k] {
			s += string(k)
		}
	}
	return s
}

// window scrolls a pane of height h so that pos stays visible.
func window(pos, top, h, n int) int {
	if pos < top {
		top = pos
	}
	if pos >= top+h {
		top = pos - h + 1
	}
	return max(min(top, n-h), 0)
}

func (m *model) layerLine(l int) string {
	if l == ContainerLayer {
		a, c, d := 0, 0, 0
		for _, ch := range m.d.Container {
			switch ch.Kind {
			case forensic.Added:
				a++
			case forensic.Changed:
				c++
			case forensic.Deleted:
				d++
			}
		}
		return fmt.Sprintf("ctr +%d ~%d -%d  container changes (diff)", a, c, d)
	}
	ly := m.d.Layers[l]
	flag := " "
	if len(ly.Findings) > 0 {
		flag = "!"
	}
	return fmt.Sprintf("%-3d %8s +%d ~%d -%d %s %s", l, units.HumanSize(float64(ly.Bytes)), ly.Added, ly.Changed, ly.Deleted, flag,
		forensic.EscapePath(ly.CreatedBy))
}

func (m *model) layerDetail() string {
	l := m.selected()
	if len(m.layers) == 0 {
		return "no layers"
	}
	if l == ContainerLayer {
		return "container: its changes against the image (digest and base digest on the selected entry)"
	}
	ly := m.d.Layers[l]
	s := fmt.Sprintf("layer %d %s  hidden %d", l, short(ly.DiffID.String()), len(ly.Hidden))
	if len(ly.Findings) > 0 {
		s += "  ! " + ly.Findings[0]
	}
	return s
}

func (m *model) treeLine(r row) string {
	depth := strings.Count(r.path, "/") - 1
	name := r.path[strings.LastIndexByte(r.path, '/')+1:]
	if r.typ == forensic.TypeDir {
		name += "/"
	}
	name = forensic.EscapePath(name)
	if r.typ == forensic.TypeSymlink {
		name += " -> " + forensic.EscapePath(r.link)
	}
	flag := " "
	if r.finding != "" {
		flag = "!"
	}
	return fmt.Sprintf("%c%s %s %7s %s%s", r.mark, flag, forensic.LsMode(r.typ, r.mode), units.HumanSize(float64(r.size)),
		strings.Repeat("  ", max(depth, 0)), name)
}

func (m *model) entryDetail() string {
	if len(m.shown) == 0 {
		return "no entries match"
	}
	r := m.all[m.shown[m.pos]]
	where := fmt.Sprintf("layer %d", r.layer)
	if r.layer == ContainerLayer {
		where = "container"
	}
	s := fmt.Sprintf("%s %d:%d %s", where, r.uid, r.gid, forensic.EscapePath(r.path))
	if len(r.fields) > 0 {
		fs := make([]string, len(r.fields))
		for i, f := range r.fields {
			fs[i] = string(f)
		}
		s += " (" + strings.Join(fs, ",") + ")"
	}
	if r.digest != "" {
		s += " " + short(r.digest.String())
	}
	if r.base != "" && r.base != r.digest {
		s += " was " + short(r.base.String())
	}
	if r.finding != "" {
		s += " ! " + r.finding
	}
	return s
}

func (m *model) viewerView() string {
	var b strings.Builder
	r := m.vrow
	where := fmt.Sprintf("layer %d", r.from)
	if r.from == ContainerLayer {
		where = "the container"
	}
	mode := "text"
	if m.hex {
		mode = "hex"
	}
	b.WriteString(bold.Render(clipTo(fmt.Sprintf("%s  from %s, %d bytes  [%s]", forensic.EscapePath(r.path), where, len(m.vdata), mode), m.w)) + "\n")
	var lines []string
	switch {
	case m.verr != nil:
		lines = []string{"cannot show it: " + m.verr.Error()}
	case m.hex:
		lines = hexLines(m.vdata)
	default:
		lines = strings.Split(strings.ReplaceAll(string(m.vdata), "\t", "    "), "\n")
	}
	h := max(m.h-2, 1)
	m.vtop = min(m.vtop, max(len(lines)-h, 0))
	for i := m.vtop; i < m.vtop+h; i++ {
		if i < len(lines) {
			b.WriteString(clipTo(lines[i], m.w))
		}
		b.WriteString("\n")
	}
	b.WriteString(inverse.Render(clipTo("↑↓ scroll  x text/hex  q back", m.w)))
	return b.String()
}

// hexLines is a hexdump -C of b.
func hexLines(b []byte) []string {
	var out []string
	for off := 0; off < len(b); off += 16 {
		chunk := b[off:min(off+16, len(b))]
		var hx, asc strings.Builder
		for i := 0; i < 16; i++ {
			if i < len(chunk) {
				fmt.Fprintf(&hx, "%02x ", chunk[i])
				c := chunk[i]
				if c < 0x20 || c > 0x7e {
					c = '.'
				}
				asc.WriteByte(c)
			} else {
				hx.WriteString("   ")
			}
		}
		out = append(out, fmt.Sprintf("%08x  %s |%s|", off, hx.String(), asc.String()))
	}
	return out
}

// clipTo cuts s to w columns (runes), escaping nothing: s is escaped already.
func clipTo(s string, w int) string {
	if w <= 0 || utf8.RuneCountInString(s) <= w {
		return s
	}
	rs := []rune(s)
	return string(rs[:max(w-1, 0)]) + "…"
}

func short(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}
