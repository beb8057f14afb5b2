package history

import "strings"

// This file holds a small, forgiving POSIX-shell tokenizer. It does not
// evaluate anything: it splits a RUN script into pipelines and stages,
// removes quotes from words, and keeps command and process substitutions
// ($(...), `...`, <(...)) verbatim inside words so that rules can look into
// them.

type tokKind uint8

const (
	tokWord tokKind = iota
	tokPipe         // | or |&
	tokSep          // ; & && || newline ( )
	tokOut          // > >> >| &> &>>
	tokIn           // < << <<<
)

type token struct {
	kind       tokKind
	text       string
	start, end int
}

type lexer struct {
	src  string
	pos  int
	toks []token
}

func lex(src string) []token {
	lx := &lexer{src: src}
	for lx.pos < len(lx.src) {
		lx.next()
	}
	return lx.toks
}

func (lx *lexer) next() {
	c := lx.src[lx.pos]
	switch {
	case c == ' ' || c == '\t' || c == '\r':
		lx.pos++
	case c == '\\' && lx.at(1) == '\n':
		lx.pos += 2
	case c == '#':
		lx.comment()
	case c == '<' && lx.at(1) == '(':
		lx.word()
	case isOpChar(c):
		lx.operator()
	default:
		lx.word()
	}
}

func (lx *lexer) at(off int) byte {
	if lx.pos+off < len(lx.src) {
		return lx.src[lx.pos+off]
	}
	return 0
}

func isOpChar(c byte) bool {
	return strings.IndexByte("|&;<>()\n", c) >= 0
}

func (lx *lexer) comment() {
	if i := strings.IndexByte(lx.src[lx.pos:], '\n'); i >= 0 {
		lx.pos += i
		return
	}
	lx.pos = len(lx.src)
}

func (lx *lexer) emit(k tokKind, text string, start int) {
	lx.toks = append(lx.toks, token{kind: k, text: text, start: start, end: lx.pos})
}

// operators lists multi-byte operators first so the longest one wins.
func operators() []struct {
	op   string
	kind tokKind
} {
	return []struct {
		op   string
		kind tokKind
	}{
		{"&>>", tokOut}, {"<<<", tokIn}, {"&&", tokSep}, {"||", tokSep}, {";;", tokSep},
		{"|&", tokPipe}, {"&>", tokOut}, {">>", tokOut}, {">|", tokOut}, {"<<", tokIn},
		{"|", tokPipe}, {">", tokOut}, {"<", tokIn},
	}
}

func (lx *lexer) operator() {
	start, rest := lx.pos, lx.src[lx.pos:]
	kind, n := tokSep, 1
	for _, o := range operators() {
		if strings.HasPrefix(rest, o.op) {
			kind, n = o.kind, len(o.op)
			break
		}
	}
	lx.pos += n
	lx.emit(kind, rest[:n], start)
	if kind == tokOut && lx.at(0) == '&' { // >&2: the target is the fd
		lx.pos++
	}
}

func (lx *lexer) word() {
	start := lx.pos
	var b strings.Builder
	for lx.pos < len(lx.src) && !lx.wordEnd() {
		lx.wordPart(&b)
	}
	text := b.String()
	if isDigits(text) && (lx.at(0) == '>' || lx.at(0) == '<') {
		return // file descriptor of a redirection (2>/dev/null)
	}
	lx.emit(tokWord, text, start)
}

func (lx *lexer) wordEnd() bool {
	c := lx.src[lx.pos]
	if c == ' ' || c == '\t' || c == '\r' {
		return true
	}
	return isOpChar(c) && (c != '<' || lx.at(1) != '(')
}

func (lx *lexer) wordPart(b *strings.Builder) {
	switch c := lx.src[lx.pos]; c {
	case '\'':
		lx.single(b)
	case '"':
		lx.double(b)
	case '\\':
		lx.escape(b, false)
	case '$', '`', '<':
		lx.subst(b)
	default:
		b.WriteByte(c)
		lx.pos++
	}
}

func (lx *lexer) single(b *strings.Builder) {
	end := strings.IndexByte(lx.src[lx.pos+1:], '\'')
	if end < 0 {
		b.WriteString(lx.src[lx.pos+1:])
		lx.pos = len(lx.src)
		return
	}
	b.WriteString(lx.src[lx.pos+1 : lx.pos+1+end])
	lx.pos += end + 2
}

func (lx *lexer) double(b *strings.Builder) {
	lx.pos++
	for lx.pos < len(lx.src) {
		switch c := lx.src[lx.pos]; c {
		case '"':
			lx.pos++
			return
		case '\\':
			lx.escape(b, true)
		case '$', '`':
			lx.subst(b)
		default:
			b.WriteByte(c)
			lx.pos++
		}
	}
}

// escape handles a backslash; inside double quotes only \" \\ \$ \` and
// newline are special.
func (lx *lexer) escape(b *strings.Builder, quoted bool) {
	c := lx.at(1)
	switch {
	case c == 0:
		b.WriteByte('\\')
		lx.pos++
		return
	case c == '\n':
	case quoted && strings.IndexByte("\"\\$`", c) < 0:
		b.WriteByte('\\')
		b.WriteByte(c)
	default:
		b.WriteByte(c)
	}
	lx.pos += 2
}

// subst copies $(...), ${...}, `...` or <(...) verbatim; a lone $ or < is
// copied as is.
func (lx *lexer) subst(b *strings.Builder) {
	end := substEnd(lx.src, lx.pos)
	if end <= lx.pos {
		b.WriteByte(lx.src[lx.pos])
		lx.pos++
		return
	}
	b.WriteString(lx.src[lx.pos:end])
	lx.pos = end
}

// substEnd returns the index just past the substitution starting at i, or i
// if none starts there.
func substEnd(s string, i int) int {
	rest := s[i:]
	switch {
	case strings.HasPrefix(rest, "$("), strings.HasPrefix(rest, "<("):
		return closeParen(s, i+1, '(', ')')
	case strings.HasPrefix(rest, "${"):
		return closeParen(s, i+1, '{', '}')
	case strings.HasPrefix(rest, "`"):
		if j := strings.IndexByte(s[i+1:], '`'); j >= 0 {
			return i + j + 2
		}
		return len(s)
	}
	return i
}

// closeParen returns the index just past the bracket matching s[open],
// skipping quoted text, or len(s) when unbalanced.
func closeParen(s string, open int, lb, rb byte) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case lb:
			depth++
		case rb:
			if depth--; depth == 0 {
				return i + 1
			}
		case '\\':
			i++
		case '\'', '"':
			if j := strings.IndexByte(s[i+1:], s[i]); j >= 0 {
				i += j + 1
			}
		}
	}
	return len(s)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stage is one command of a pipeline.
type stage struct {
	words []string
	outs  []string // output redirection targets
	ins   []string // input redirection sources
	text  string   // the stage as written
}

// pipeline is a list of stages joined by |.
type pipeline struct {
	stages     []*stage
	text       string
	start, end int
}

type parser struct {
	src     string
	out     []pipeline
	cur     pipeline
	st      *stage
	stStart int
	redir   tokKind
}

// parseScript splits a shell script into pipelines.
func parseScript(src string) []pipeline {
	p := &parser{src: src, redir: tokWord}
	for _, t := range lex(src) {
		p.add(t)
	}
	p.endPipeline()
	return p.out
}

func (p *parser) add(t token) {
	switch t.kind {
	case tokWord:
		p.word(t)
	case tokPipe:
		p.endStage()
	case tokSep:
		p.endPipeline()
	default:
		p.touch(t)
		p.redir = t.kind
	}
}

// touch opens a stage if needed and extends it to t.
func (p *parser) touch(t token) {
	if p.st == nil {
		p.st, p.stStart = &stage{}, t.start
		if len(p.cur.stages) == 0 {
			p.cur.start = t.start
		}
		p.cur.stages = append(p.cur.stages, p.st)
	}
	p.st.text = strings.TrimSpace(p.src[p.stStart:t.end])
	p.cur.end = t.end
}

func (p *parser) word(t token) {
	p.touch(t)
	switch p.redir {
	case tokOut:
		p.st.outs = append(p.st.outs, t.text)
	case tokIn:
		p.st.ins = append(p.st.ins, t.text)
	default:
		p.st.words = append(p.st.words, t.text)
	}
	p.redir = tokWord
}

func (p *parser) endStage() {
	p.st, p.redir = nil, tokWord
}

func (p *parser) endPipeline() {
	p.endStage()
	if len(p.cur.stages) > 0 {
		p.cur.text = strings.TrimSpace(p.src[p.cur.start:p.cur.end])
		p.out = append(p.out, p.cur)
	}
	p.cur = pipeline{}
}

// substBodies returns the bodies of the command and process substitutions in
// a word, outermost first.
func substBodies(w string) []string {
	var out []string
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c != '$' && c != '<' && c != '`' {
			continue
		}
		end := substEnd(w, i)
		if end <= i || strings.HasPrefix(w[i:], "${") {
			continue
		}
		open := 2
		if c == '`' {
			open = 1
		}
		out = append(out, trimClose(w[i+open:end], c))
		i = end - 1
	}
	return out
}

func trimClose(body string, open byte) string {
	if open == '`' {
		return strings.TrimSuffix(body, "`")
	}
	return strings.TrimSuffix(body, ")")
}

// splitFields splits ENV/ARG/ADD text on unquoted blanks, removing quotes.
func splitFields(s string) []string {
	var out []string
	var b strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, b.String())
		}
		b.Reset()
		inWord = false
	}
	lx := &lexer{src: s}
	for lx.pos < len(s) {
		switch c := s[lx.pos]; c {
		case ' ', '\t', '\n', '\r':
			flush()
			lx.pos++
		case '\'':
			inWord = true
			lx.single(&b)
		case '"':
			inWord = true
			lx.double(&b)
		case '\\':
			inWord = true
			lx.escape(&b, false)
		default:
			inWord = true
			b.WriteByte(c)
			lx.pos++
		}
	}
	flush()
	return out
}
