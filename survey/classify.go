package survey

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/kljensen/snowball/russian"
	"github.com/otklik/otklik/store"
)

//go:embed dictionary/ru.txt
var defaultDictionary []byte

// Tones of feedback.
const (
	Positive = "positive"
	Negative = "negative"
)

// Dictionary classifies comments into feedback categories and tones by
// keywords a marketer edits in a text file (dictionary/ru.txt shows the
// format). Words are reduced to their stems with the Russian Snowball
// stemmer, so one form in the file finds the others.
//
// A comment is read clause by clause (split at punctuation and at "но",
// "а", "однако"). A keyword with a category and a tone gives that pair;
// a negation just before it turns the tone over ("не помог"). A general
// tone word ("отлично") applies to the categories named in its clause,
// else to those named in the comment, else to "other"; a category named
// with no tone anywhere gives nothing.
type Dictionary struct {
	entries   map[string][]entry // by the first stem
	negations map[string]bool
}

type entry struct {
	stems    []string
	category string // "" for a general tone word
	tone     byte   // '+', '-' or '='
}

// LoadDictionary reads a dictionary file; path "" uses the built-in one.
// An unreadable line is an error naming the file and line.
func LoadDictionary(path string) (*Dictionary, error) {
	body, name := defaultDictionary, "built-in dictionary"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("dictionary: %w", err)
		}
		body, name = b, path
	}
	return ParseDictionary(name, bytes.NewReader(body))
}

var sections = map[string]string{
	"service": "service", "assortment": "assortment", "prices": "prices",
	"comfort": "comfort", "other": "other", "tone": "", "negation": "",
}

// ParseDictionary reads a dictionary; name is used in errors.
func ParseDictionary(name string, r io.Reader) (*Dictionary, error) {
	d := &Dictionary{entries: map[string][]entry{}, negations: map[string]bool{}}
	sc := bufio.NewScanner(r)
	section, line := "", 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]") {
			section = strings.TrimSpace(text[1 : len(text)-1])
			if _, ok := sections[section]; !ok {
				return nil, fmt.Errorf("%s:%d: unknown section [%s] (service, assortment, prices, comfort, other, tone, negation)", name, line, section)
			}
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("%s:%d: words before the first [section]", name, line)
		}
		if section == "negation" {
			for _, w := range strings.Split(text, ",") {
				if w = normalize(strings.TrimSpace(w)); w != "" {
					d.negations[w] = true
				}
			}
			continue
		}
		sign := text[0]
		if sign != '+' && sign != '-' && sign != '=' {
			return nil, fmt.Errorf("%s:%d: a line starts with +, - or =, not %q", name, line, string(rune(text[0])))
		}
		if section == "tone" && sign == '=' {
			return nil, fmt.Errorf("%s:%d: [tone] takes + or - only", name, line)
		}
		for _, phrase := range strings.Split(text[1:], ",") {
			words := tokens(phrase)
			if len(words) == 0 {
				continue
			}
			e := entry{category: sections[section], tone: sign}
			for _, w := range words {
				e.stems = append(e.stems, stem(w.text))
			}
			d.entries[e.stems[0]] = append(d.entries[e.stems[0]], e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for k := range d.entries {
		es := d.entries[k]
		sort.SliceStable(es, func(i, j int) bool { return len(es[i].stems) > len(es[j].stems) })
	}
	return d, nil
}

type token struct {
	text   string
	clause int
}

var clauseWords = map[string]bool{"но": true, "а": true, "однако": true, "зато": true}

// tokens splits text into lower-case words, numbering clauses.
func tokens(text string) []token {
	var out []token
	clause := 0
	var b strings.Builder
	flush := func() {
		if b.Len() == 0 {
			return
		}
		w := normalize(b.String())
		b.Reset()
		if clauseWords[w] {
			clause++
			return
		}
		out = append(out, token{text: w, clause: clause})
	}
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case r == '-' && b.Len() > 0:
			b.WriteRune(r)
		default:
			flush()
			if strings.ContainsRune(".,!?;:()\n", r) {
				clause++
			}
		}
	}
	flush()
	return out
}

func normalize(w string) string {
	return strings.ReplaceAll(strings.ToLower(w), "ё", "е")
}

func stem(w string) string {
	if len([]rune(w)) <= 3 {
		return w
	}
	return russian.Stem(w, true)
}

// same matches a token's stem to a dictionary stem. The stemmer does not
// always cut two forms of a word alike ("помог", "помогл"), so a stem of
// at least four letters also matches a longer one it begins.
func same(tok, dict string) bool {
	if tok == dict {
		return true
	}
	short, long := tok, dict
	if len(short) > len(long) {
		short, long = long, short
	}
	return len([]rune(short)) >= 4 && strings.HasPrefix(long, short)
}

type match struct {
	entry
	clause  int
	negated bool
}

// Classify returns the feedback categories and tones a comment expresses.
func (d *Dictionary) Classify(text string) []store.Feedback {
	toks := tokens(text)
	stems := make([]string, len(toks))
	for i, t := range toks {
		stems[i] = stem(t.text)
	}
	var matches []match
	for i := 0; i < len(toks); {
		e, n := d.longest(stems, toks, i)
		if n == 0 {
			i++
			continue
		}
		negated := false
		for j := i - 1; j >= 0 && j >= i-2 && toks[j].clause == toks[i].clause; j-- {
			if d.negations[toks[j].text] {
				negated = true
				break
			}
		}
		if len(e.stems) > 0 && d.negations[e.stems[0]] {
			negated = false // the phrase holds its own negation ("не хватает")
		}
		matches = append(matches, match{entry: e, clause: toks[i].clause, negated: negated})
		i += n
	}
	clauseCats := map[int]map[string]bool{}
	allCats := map[string]bool{}
	for _, m := range matches {
		if m.category != "" {
			if clauseCats[m.clause] == nil {
				clauseCats[m.clause] = map[string]bool{}
			}
			clauseCats[m.clause][m.category] = true
			allCats[m.category] = true
		}
	}
	seen := map[store.Feedback]bool{}
	var out []store.Feedback
	add := func(cat string, tone byte, negated bool) {
		t := Positive
		if tone == '-' {
			t = Negative
		}
		if negated {
			t = map[string]string{Positive: Negative, Negative: Positive}[t]
		}
		f := store.Feedback{Category: cat, Tone: t}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, m := range matches {
		switch {
		case m.tone == '=':
		case m.category != "":
			add(m.category, m.tone, m.negated)
		default:
			cats := clauseCats[m.clause]
			if len(cats) == 0 {
				cats = allCats
			}
			if len(cats) == 0 {
				cats = map[string]bool{"other": true}
			}
			for _, c := range sortedKeys(cats) {
				add(c, m.tone, m.negated)
			}
		}
	}
	return out
}

// longest finds the longest dictionary phrase at position i, within one
// clause; among equally long ones, an exact match of the first word wins,
// then the category that sorts first, so that the result never depends
// on map order.
func (d *Dictionary) longest(stems []string, toks []token, i int) (entry, int) {
	var best entry
	bestExact := false
	for key, es := range d.entries {
		if !same(stems[i], key) {
			continue
		}
		exact := stems[i] == key
		for _, e := range es {
			n := len(e.stems)
			if i+n > len(stems) || toks[i+n-1].clause != toks[i].clause || n < len(best.stems) {
				continue
			}
			if n == len(best.stems) && (bestExact && !exact || bestExact == exact && e.category+string(e.tone) >= best.category+string(best.tone)) {
				continue
			}
			ok := true
			for k := 1; k < n && ok; k++ {
				ok = same(stems[i+k], e.stems[k])
			}
			if ok {
				best, bestExact = e, exact
			}
		}
	}
	return best, len(best.stems)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
