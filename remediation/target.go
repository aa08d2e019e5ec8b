package remediation

// Where an alert's values land in a request. A label is data, written by
// whoever can make an alert fire: it cannot move a request to another
// scheme, host or port, step out of the path segment it was put in, or add
// a key to a JSON body. The URL's shape (scheme, userinfo, host, port, its
// path's segments, fragment) is read from the configured text at load;
// every value a template writes into it goes through the escaper of the
// part it sits in, as html/template does for HTML; and the rendered URL is
// parsed again and compared with the shape before anything is sent.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	tmpltext "text/template"
	"text/template/parse"
	"time"
	"unicode"

	"github.com/prometheus/alertmanager/template"
)

// refusal is why an action was refused: a value would have changed where
// its request goes. It is audited with reason refused; nothing is sent.
type refusal string

func (r refusal) Error() string { return string(r) }

const dotSegmentWhy = "which a server reads as a step in the path, not a name"

// pathSegment is v as one path segment: escaped, so that '/', '?' and '#'
// stay inside it, and refused when it is empty, "." or "..", which
// url.PathEscape leaves as they are and a server that normalises paths
// reads as steps (/internal/circuit-breaker/.. is /internal/). The circuit
// breaker and the step read put a whole value into a segment with it; the
// http action checks each rendered segment with checkSegment.
func pathSegment(v string) (string, error) {
	if err := checkSegment(v); err != nil {
		return "", err
	}
	return url.PathEscape(v), nil
}

// checkSegment refuses a decoded path segment that is no name.
func checkSegment(v string) error {
	switch v {
	case "":
		return refusal("rendered empty")
	case ".", "..":
		return refusal(fmt.Sprintf("rendered to %q, %s", v, dotSegmentWhy))
	}
	return nil
}

// The escapers a URL's template actions are piped into, by the part they
// write into. Every template has them (a function must be known when its
// template is parsed); a user never needs to call them.
const (
	escHost  = "_alertmedic_host"
	escPath  = "_alertmedic_path_segment"
	escQuery = "_alertmedic_query_value"
)

var (
	// A value in a host is part of one DNS label: no '.', so it cannot add
	// a domain either, and nothing that url.Parse would read as userinfo,
	// port, path, query or fragment.
	hostValueRE = regexp.MustCompile(`^[A-Za-z0-9-]*$`)
	// What the configuration may write around a templated host.
	hostTextRE  = regexp.MustCompile(`^[A-Za-z0-9.-]*$`)
	hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

var urlFuncs = tmpltext.FuncMap{
	escHost: func(args ...any) (string, error) {
		s := printArgs(args)
		if !hostValueRE.MatchString(s) {
			return "", refusal(fmt.Sprintf("params.url: %q cannot be part of a host name (only letters, digits and '-' can)", s))
		}
		return s, nil
	},
	escPath:  func(args ...any) string { return url.PathEscape(printArgs(args)) },
	escQuery: func(args ...any) string { return url.QueryEscape(printArgs(args)) },
}

// printArgs is what text/template would have printed (as its urlquery
// does).
func printArgs(args []any) string {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			return s
		}
	}
	return fmt.Sprint(args...)
}

// urlTemplate is an http action's url: its template, every action piped
// into its part's escaper, and the shape the rendered URL must keep.
type urlTemplate struct {
	tmpl     *tmpltext.Template
	scheme   string
	user     string // (*url.Userinfo).String() of what is written, "" for none
	host     string // as written; "" when templated
	port     string
	fragment string
	// templated says of each path segment, as strings.Split(path, "/")
	// cuts the path, whether a template writes into it; a templated one
	// may not render empty.
	templated []bool
}

// The parts of a URL, as url.Parse cuts it.
type urlPart int

const (
	partScheme urlPart = iota
	partUserinfo
	partHost
	partPort
	partPath
	partQuery
	partFragment
)

// structural is what text inside {{ if }}, {{ range }} or {{ with }} may
// not hold in each part: the URL's shape would depend on a value.
var structural = map[urlPart]string{partHost: "/?#@:[]", partPath: "/?#", partQuery: "#"}

// slotMark stands for a template's output in the skeleton, the URL's text
// with each output replaced by it. A URL cannot hold it (url.Parse refuses
// control characters), so the configuration's text is refused if it does.
const slotMark = "\x00"

// compileURL reads the shape of t's URL and pipes each of its actions into
// the escaper of the part it writes into. It changes t.
func compileURL(t *tmpltext.Template) (*urlTemplate, error) {
	// A rendered URL is trimmed (a YAML block scalar ends in a newline);
	// the text it is read from is trimmed the same way.
	if nodes := t.Tree.Root.Nodes; len(nodes) > 0 {
		if n, ok := nodes[0].(*parse.TextNode); ok {
			n.Text = bytes.TrimLeftFunc(n.Text, unicode.IsSpace)
		}
		if n, ok := nodes[len(nodes)-1].(*parse.TextNode); ok {
			n.Text = bytes.TrimRightFunc(n.Text, unicode.IsSpace)
		}
	}
	var sk strings.Builder
	type slot struct {
		at   int
		node parse.Node
	}
	var slots []slot
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if strings.Contains(string(n.Text), slotMark) {
				return nil, errors.New("must be an http or https URL")
			}
			sk.Write(n.Text)
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				continue // {{ $x := ... }} writes nothing
			}
			slots = append(slots, slot{sk.Len(), n})
			sk.WriteString(slotMark)
		case *parse.TemplateNode:
			return nil, errors.New("{{ template }} cannot be used: its output would not be escaped")
		default: // if, range, with: they write into the part they sit in
			slots = append(slots, slot{sk.Len(), n})
			sk.WriteString(slotMark)
		}
	}
	s := sk.String()

	// Cut the skeleton as url.Parse cuts a URL: the fragment, the query,
	// "scheme://", the authority up to the first '/', its userinfo up to the
	// last '@', its port after the last ':' (outside an IPv6 address).
	fragAt := len(s)
	if i := strings.IndexByte(s, '#'); i >= 0 {
		fragAt = i
	}
	queryAt := fragAt
	if i := strings.IndexByte(s[:fragAt], '?'); i >= 0 {
		queryAt = i
	}
	sch := strings.Index(s[:queryAt], "://")
	if m := strings.Index(s, slotMark); m >= 0 {
		colon := strings.IndexByte(s, ':')
		if sch >= 0 {
			colon = sch
		}
		if colon < 0 || m < colon {
			return nil, errors.New("the scheme must be written out, not templated")
		}
	}
	if sch < 0 {
		return nil, errors.New("must be an http or https URL")
	}
	authAt := sch + 3
	pathAt := queryAt
	if i := strings.IndexByte(s[authAt:queryAt], '/'); i >= 0 {
		pathAt = authAt + i
	}
	hostAt, hostEnd := authAt, pathAt
	if i := strings.LastIndexByte(s[authAt:pathAt], '@'); i >= 0 {
		hostAt = authAt + i + 1
	}
	hp := s[hostAt:pathAt]
	if strings.HasPrefix(hp, "[") {
		if i := strings.IndexByte(hp, ']'); i >= 0 && strings.HasPrefix(hp[i+1:], ":") {
			hostEnd = hostAt + i + 1
		}
		if strings.Contains(hp, slotMark) {
			return nil, errors.New("an IP address in brackets must be written out, not templated")
		}
	} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		hostEnd = hostAt + i
	}
	partAt := func(i int) urlPart {
		switch {
		case i < authAt:
			return partScheme
		case i < hostAt:
			return partUserinfo
		case i < hostEnd:
			return partHost
		case i < pathAt:
			return partPort
		case i < queryAt:
			return partPath
		case i < fragAt:
			return partQuery
		}
		return partFragment
	}
	for _, sl := range slots {
		part := partAt(sl.at)
		var esc string
		switch part {
		case partScheme:
			return nil, errors.New("the scheme must be written out, not templated")
		case partUserinfo:
			return nil, errors.New("the userinfo must be written out, not templated")
		case partPort:
			return nil, errors.New("the port must be written out, not templated")
		case partFragment:
			return nil, errors.New("the fragment must be written out, not templated")
		case partHost:
			esc = escHost
		case partPath:
			esc = escPath
		case partQuery:
			esc = escQuery
		}
		if err := escapeNode(t.Tree, sl.node, esc, structural[part]); err != nil {
			return nil, err
		}
	}

	// What is written must parse as an http URL, with any value standing in.
	probe := strings.ReplaceAll(s, slotMark, "x")
	if err := checkHTTPURL(probe); err != nil {
		return nil, err
	}
	pu, _ := url.Parse(probe)
	ut := &urlTemplate{tmpl: t, scheme: pu.Scheme, user: pu.User.String(), port: pu.Port(), fragment: pu.Fragment}
	if host := s[hostAt:hostEnd]; !strings.Contains(host, slotMark) {
		ut.host = pu.Hostname()
	} else {
		for _, text := range strings.Split(host, slotMark) {
			if !hostTextRE.MatchString(text) {
				return nil, fmt.Errorf("a templated host may hold only letters, digits, '-' and '.' around its templates, got %q", text)
			}
		}
		if !validHostname(pu.Hostname()) {
			return nil, fmt.Errorf("the host %q is not a valid host name", pu.Hostname())
		}
	}
	for _, seg := range strings.Split(s[pathAt:queryAt], "/") {
		templated := strings.Contains(seg, slotMark)
		ut.templated = append(ut.templated, templated)
		if v, err := url.PathUnescape(seg); err == nil && !templated && (v == "." || v == "..") {
			return nil, fmt.Errorf("a path segment is %q, %s", v, dotSegmentWhy)
		}
	}
	return ut, nil
}

// escapeNode pipes every value n writes into esc. Text inside a control
// structure (n is an if, a range or a with) may not hold a character of
// forbid: the URL's shape is the configuration's, not a value's.
func escapeNode(tr *parse.Tree, n parse.Node, esc, forbid string) error {
	switch n := n.(type) {
	case *parse.TextNode:
		if strings.ContainsAny(string(n.Text), forbid) {
			return fmt.Errorf("text inside {{ if }}, {{ range }} or {{ with }} must not hold any of %q: write the URL's structure outside them", forbid)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			addEscaper(tr, n.Pipe, esc)
		}
	case *parse.TemplateNode:
		return errors.New("{{ template }} cannot be used: its output would not be escaped")
	case *parse.IfNode:
		return escapeLists(tr, esc, forbid, n.List, n.ElseList)
	case *parse.RangeNode:
		return escapeLists(tr, esc, forbid, n.List, n.ElseList)
	case *parse.WithNode:
		return escapeLists(tr, esc, forbid, n.List, n.ElseList)
	}
	return nil
}

func escapeLists(tr *parse.Tree, esc, forbid string, lists ...*parse.ListNode) error {
	for _, l := range lists {
		if l == nil {
			continue
		}
		for _, n := range l.Nodes {
			if err := escapeNode(tr, n, esc, forbid); err != nil {
				return err
			}
		}
	}
	return nil
}

// addEscaper makes pipe end in esc. A pipe that ends in urlquery, the way
// to escape before this, has it replaced (it would escape twice, and a
// query's escaping is wrong in a path).
func addEscaper(tr *parse.Tree, pipe *parse.PipeNode, esc string) {
	if last := pipe.Cmds[len(pipe.Cmds)-1]; len(last.Args) > 0 {
		if id, ok := last.Args[0].(*parse.IdentifierNode); ok && id.Ident == "urlquery" {
			last.Args[0] = parse.NewIdentifier(esc).SetTree(tr).SetPos(id.Pos)
			return
		}
	}
	id := parse.NewIdentifier(esc).SetTree(tr).SetPos(pipe.Pos)
	pipe.Cmds = append(pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pipe.Pos, Args: []parse.Node{id}})
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// render builds the URL for a and checks it against the shape. A value
// that would change the shape is a refusal. The errors never quote the
// URL, whose query or userinfo may hold a credential.
func (u *urlTemplate) render(a template.Alert) (string, error) {
	var b strings.Builder
	if err := u.tmpl.Execute(&b, a); err != nil {
		var r refusal
		if errors.As(err, &r) {
			return "", r
		}
		return "", fmt.Errorf("render params.url: %w", err)
	}
	s := strings.TrimSpace(b.String())
	return s, u.check(s)
}

// check compares a rendered URL, parsed as the client will parse it, with
// the shape. The escapers make a mismatch impossible; this is the second
// lock on the same door, and what FuzzHTTPURL holds to.
func (u *urlTemplate) check(s string) error {
	p, err := url.Parse(s)
	switch {
	case err != nil:
		return refusal("params.url: rendered to a URL that does not parse")
	case p.Scheme != u.scheme || p.Opaque != "":
		return refusal("params.url: rendered to another scheme than " + u.scheme)
	case p.User.String() != u.user:
		return refusal("params.url: rendered to other userinfo than the configured")
	case p.Port() != u.port:
		return refusal("params.url: rendered to another port than the configured")
	case u.host != "" && p.Hostname() != u.host:
		return refusal("params.url: rendered to another host than the configured")
	case u.host == "" && !validHostname(p.Hostname()):
		return refusal(fmt.Sprintf("params.url: the host rendered to %q, which is not a valid host name", p.Hostname()))
	case p.Fragment != u.fragment:
		return refusal("params.url: rendered to another fragment than the configured")
	}
	segs := strings.Split(p.EscapedPath(), "/")
	if len(segs) != len(u.templated) {
		return refusal("params.url: rendered to another number of path segments than the configured")
	}
	for i, seg := range segs {
		v, err := url.PathUnescape(seg)
		if err != nil {
			return refusal("params.url: a path segment rendered to a bad escape")
		}
		if v == "" && !u.templated[i] {
			continue // as written: the root, a trailing slash
		}
		if err := checkSegment(v); err != nil {
			return refusal("params.url: a path segment " + err.Error())
		}
	}
	return nil
}

// jsonBody is a body given as YAML (the rule's body): its shape is the
// configuration's, and each string in it is a template rendered to one JSON
// string, so a value can neither end the string nor add a key. Exactly one
// of the fields is set.
type jsonBody struct {
	tmpl *tmpltext.Template   // a string
	obj  map[string]*jsonBody // a mapping
	list []*jsonBody          // a sequence
	lit  json.RawMessage      // a number, a boolean, null
}

// compileBody checks v, a decoded YAML value at name (body, body.a,
// body.list[0]); errors are reported at p + "." + name.
func compileBody(p, name string, v any, bad func(string, string, ...any)) *jsonBody {
	switch x := v.(type) {
	case nil:
		return &jsonBody{lit: json.RawMessage("null")}
	case string:
		t, err := newTemplate(name, x)
		if err != nil {
			bad(p+"."+name, "bad template: %v", err)
		}
		return &jsonBody{tmpl: t}
	case time.Time:
		// YAML reads 2026-03-02 as a time, which JSON would write as
		// 2026-03-02T00:00:00Z: not what the configuration says.
		bad(p+"."+name, "a date must be quoted to be sent as it is written")
		return &jsonBody{lit: json.RawMessage("null")}
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		b := &jsonBody{obj: map[string]*jsonBody{}}
		keys := map[string]reflect.Value{}
		for _, k := range rv.MapKeys() {
			ks, ok := k.Interface().(string)
			if !ok {
				bad(p+"."+name, "a key must be a string, got %v", k.Interface())
				continue
			}
			keys[ks] = k
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if strings.Contains(k, templateMarker) {
				bad(p+"."+name+"."+k, "a key is not templated")
				continue
			}
			b.obj[k] = compileBody(p, name+"."+k, rv.MapIndex(keys[k]).Interface(), bad)
		}
		return b
	case reflect.Slice, reflect.Array:
		b := &jsonBody{list: make([]*jsonBody, rv.Len())}
		for i := range rv.Len() {
			b.list[i] = compileBody(p, fmt.Sprintf("%s[%d]", name, i), rv.Index(i).Interface(), bad)
		}
		return b
	}
	raw, err := json.Marshal(v)
	if err != nil {
		bad(p+"."+name, "cannot be sent as JSON: %v", err)
	}
	return &jsonBody{lit: raw}
}

// value renders b over a into what json.Marshal turns into the body.
func (b *jsonBody) value(a template.Alert) (any, error) {
	switch {
	case b.tmpl != nil:
		var s strings.Builder
		if err := b.tmpl.Execute(&s, a); err != nil {
			return nil, fmt.Errorf("render %s: %w", b.tmpl.Name(), err)
		}
		return s.String(), nil
	case b.obj != nil:
		m := make(map[string]any, len(b.obj))
		for k, c := range b.obj {
			v, err := c.value(a)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case b.list != nil:
		l := make([]any, len(b.list))
		for i, c := range b.list {
			v, err := c.value(a)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	}
	return b.lit, nil
}

// checkStringBody holds a body written as JSON text (params.body) to one
// rule: every value it writes is a whole JSON value, its action ending in
// json. A label then fills the place the configuration gave it and no
// other; pasted between quotes instead, "x", "replicas": 1000, "y": "x"
// added a key.
func checkStringBody(t *tmpltext.Template) error {
	var check func(nodes []parse.Node) error
	check = func(nodes []parse.Node) error {
		for _, n := range nodes {
			var lists []*parse.ListNode
			switch n := n.(type) {
			case *parse.ActionNode:
				if len(n.Pipe.Decl) > 0 || endsInJSON(n.Pipe) {
					continue
				}
				fix := "{{ " + n.Pipe.String() + " | json }}"
				if len(n.Pipe.Cmds) == 1 {
					fix = "{{ json " + n.Pipe.String() + " }}"
				}
				return fmt.Errorf("%s inserts its value into the JSON as it is, so a label could add keys: "+
					"write %s (it adds the quotes), or give the body as YAML in the rule's body", n, fix)
			case *parse.TemplateNode:
				return errors.New("{{ template }} cannot be used: its output would not be escaped")
			case *parse.IfNode:
				lists = []*parse.ListNode{n.List, n.ElseList}
			case *parse.RangeNode:
				lists = []*parse.ListNode{n.List, n.ElseList}
			case *parse.WithNode:
				lists = []*parse.ListNode{n.List, n.ElseList}
			}
			for _, l := range lists {
				if l != nil {
					if err := check(l.Nodes); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return check(t.Tree.Root.Nodes)
}

func endsInJSON(pipe *parse.PipeNode) bool {
	last := pipe.Cmds[len(pipe.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "json"
}
