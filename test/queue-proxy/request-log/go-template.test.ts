// Go text/template compatibility. Every expected string below is what Go's
// text/template (go1.19, plus HEAD-only features noted) prints for the same
// template and data.
import t from 'tap'
import {
  GoMap,
  GoTemplateExecError,
  GoTemplateParseError,
  formatFloat,
  goType,
  jsEscapeString,
  parseGoTemplate,
  sprintf,
} from '@sluice/queue-proxy/request-log/go-template/index'

const revType = {
  name: '*http.RequestLogRevision',
  fields: new Map<string, (r: { name: string; ip: string }) => unknown>([['Name', (r) => r.name], ['PodIP', (r) => r.ip]]),
}

/** The Go data: map[string]interface{} with typed values (bigint = int, number = float64). */
function data(): Record<string, unknown> {
  return {
    S: ['a', 'b'], E: [], I: 42n, F: 1.5, Str: 'hé"<', T: true, N: null, Z: 0n, Zf: 0,
    M: new GoMap({ name: 'map[string]int', zero: 0n }, new Map([['b', 2n], ['a', 1n]])),
    H: new GoMap({ name: 'http.Header', zero: [] }, new Map([['X-A', ['1', '2']], ['Accept', ['*/*']]])),
    EM: new GoMap({ name: 'map[string]int', zero: 0n }, new Map()),
    Is: [3n, 1n, 2n],
    Nested: { A: { B: 'deep' } },
    Rev: { [goType]: revType, name: 'rev-1', ip: '10.0.0.1' },
  }
}

function run(src: string, dot: unknown = data()): string {
  return parseGoTemplate(src, 't').execute(dot)
}

function execError(src: string): string {
  try {
    run(src)
  } catch (e) {
    if (e instanceof GoTemplateExecError) return e.message
    throw e
  }
  throw new Error('template executed without error')
}

function parseError(src: string): string {
  try {
    parseGoTemplate(src, 't')
  } catch (e) {
    if (e instanceof GoTemplateParseError) return e.message
    throw e
  }
  throw new Error('template parsed without error')
}

t.test('values print as Go fmt %v: slices [a b], maps sorted, missing key <no value>', async (t) => {
  t.equal(run('{{.S}} {{.E}} {{.I}} {{.F}} {{.Str}} {{.T}} {{.N}} {{.M}} {{.H}} {{.Z}}'),
    '[a b] [] 42 1.5 hé"< true <no value> map[a:1 b:2] map[Accept:[*/*] X-A:[1 2]] 0')
  t.equal(run('{{.Missing}}|{{.M.zz}}|{{.Nested.A.B}}|{{.Nested.X.Y}}'), '<no value>|<no value>|deep|<no value>')
  t.equal(run('{{.Rev}}|{{printf "%v" .Rev}}|{{printf "%+v" .Rev}}'), '{rev-1 10.0.0.1}|&{rev-1 10.0.0.1}|&{Name:rev-1 PodIP:10.0.0.1}')
})

t.test('float64 prints like Go %v (shortest digits, exponent below 1e-4 and from 1e+06)', async (t) => {
  t.equal(run('{{range .}}{{.}}|{{end}}', [1e6, 1e-7, 0.1, 123456789.0, 2.5, 0.001234567, 1e21, 1e20, 100000, 12345678.9]),
    '1e+06|1e-07|0.1|1.23456789e+08|2.5|0.001234567|1e+21|1e+20|100000|1.23456789e+07|')
  t.equal(formatFloat(0.0001), '0.0001')
  t.equal(formatFloat(0.00009999), '9.999e-05')
  t.equal(formatFloat(999999.5), '999999.5')
  t.equal(formatFloat(1.5), '1.5')
  t.equal(formatFloat(1), '1')
  t.equal(formatFloat(-0), '-0')
  t.equal(formatFloat(Infinity), '+Inf')
  t.equal(formatFloat(-Infinity), '-Inf')
  t.equal(formatFloat(NaN), 'NaN')
  t.equal(formatFloat(5e-324), '5e-324')
  t.equal(formatFloat(1.7976931348623157e308), '1.7976931348623157e+308')
})

t.test('printf: verbs, flags, width, precision and Go error forms', async (t) => {
  t.equal(run('{{printf "%d|%s|%q|%v|%x|%X|%t|%5d|%-5d|%05d|%+d" .I .Str .Str .S .I .Str .T .I .I -7 .I}}'),
    '42|hé"<|"hé\\"<"|[a b]|2a|68C3A9223C|true|   42|42   |-0007|+42')
  t.equal(run('{{printf "%5.2f|%-8.3f|%08.3f|%+.1e|%10s|%-10s|%.2s|%5t|%q|%#q|%+q|%c|%U|%#U" 3.14159 2.0 -3.5 12345.678 "hi" "hi" "héllo" true 65 "a`b" "é" 128512 128512 65}}'),
    " 3.14|2.000   |-003.500|+1.2e+04|        hi|hi        |hé| true|'A'|\"a`b\"|\"\\u00e9\"|😀|U+1F600|U+0041 'A'")
  // Exact decimal rounding, half to even on true ties (JS toFixed would round 0.25 up).
  t.equal(run('{{printf "%.0f %.0f %.1f %.2e %.3g %g %g %G %e" 2.5 3.5 0.25 1250.0 1.0 1e-7 123456789.0 1e-7 0.0}}'),
    '2 4 0.2 1.25e+03 1 1e-07 1.23456789e+08 1E-07 0.000000e+00')
  t.equal(run('{{printf "%.3f %.10f %.20f %e %E %.0e" 1.0005 0.1 0.1 1e-300 5e-324 125.0}}'),
    '1.000 0.1000000000 0.10000000000000000555 1.000000e-300 4.940656E-324 1e+02')
  t.equal(run('{{printf "%x %X %o %b %#x %#o %#b %08.3d %.0d|" 255 255 8 5 255 8 5 7 0}}'), 'ff FF 10 101 0xff 010 0b101      007 |')
  t.equal(run('{{printf "%6.2v|%.3v|%10.4g" 3.14159 "abcdef" 3.14159}}'), '   3.1|abc|     3.142')
  t.equal(run('{{printf "%d %s %f %t" "x" 5 5 1}}'), '%!d(string=x) %!s(int=5) %!f(int=5) %!t(int=1)')
  t.equal(run('{{printf "%d %d" 1}}|{{printf "%d" 1 "x" 2}}|{{printf "%z %!" 1}}|{{printf "%"}}'),
    '1 %!d(MISSING)|1%!(EXTRA string=x, int=2)|%!z(int=1) %!!(MISSING)|%!(NOVERB)')
  t.equal(run('{{printf "%v %d %s" .N .N .N}}|{{printf "%s" .Missing}}'), '<nil> %!d(<nil>) %!s(<nil>)|%!s(<nil>)')
  t.equal(run('{{printf "%v|%d|%s|%x" .M .M .S .S}}'), 'map[a:1 b:2]|map[%!d(string=a):1 %!d(string=b):2]|[a b]|[61 62]')
  t.equal(run('{{printf "%T %T %T %T %T" .I .F .S .M .Rev}}'), 'int float64 []string map[string]int *http.RequestLogRevision')
  t.equal(sprintf('%s=%d%%', ['n', 5n]), 'n=5%')
})

t.test('js escapes exactly as text/template JSEscapeString', async (t) => {
  t.equal(run(`{{js "a\\\\b'c\\"d<e>f&g=h"}}`), "a\\\\b\\'c\\\"d\\u003Ce\\u003Ef\\u0026g\\u003Dh")
  t.equal(run('{{js .Str}}'), 'hé\\"\\u003C', 'printable unicode is kept')
  t.equal(jsEscapeString('a\x01b\tc\x7f'), 'a\\u0001b\\u0009c\x7f', 'control chars as \\uXXXX, DEL untouched')
  t.equal(jsEscapeString('日本\u2028\u00a0\u200b😀`'), '日本\\u2028\\u00A0\\u200B😀`', 'non-printable unicode as upper-case \\uXXXX')
  t.equal(run('{{js 1 2}}|{{js "a" "b"}}|{{js .N}}|{{js 1 .N}}'), '1 2|ab|\\u003Cno value\\u003E|1\\u003Cno value\\u003E')
  const plain = 'GET /index.html curl/8.0'
  t.equal(jsEscapeString(plain), plain)
})

t.test('html and urlquery escape as Go', async (t) => {
  t.equal(run(`{{html "<a href='x'>&\\"\\x00"}}|{{html .S}}|{{html .N}}`), '&lt;a href=&#39;x&#39;&gt;&amp;&#34;\ufffd|[a b]|&lt;no value&gt;')
  t.equal(run('{{urlquery "a b&c=d/é~_.-+"}}|{{urlquery .S 1}}'), 'a+b%26c%3Dd%2F%C3%A9~_.-%2B|%5Ba+b%5D+1')
})

t.test('print and println space operands as fmt.Sprint/Sprintln', async (t) => {
  t.equal(run('{{print 1 2 "a" "b" 3 .N .S}}'), '1 2ab3 <nil> [a b]')
  t.equal(run('{{println 1 "a" .N}}'), '1 a <nil>\n')
})

t.test('if / else if / else, with, else with', async (t) => {
  t.equal(run('{{if .T}}yes{{else}}no{{end}} {{if .E}}yes{{else}}no{{end}} {{if .Missing}}y{{else if .I}}i{{else}}n{{end}}'), 'yes no i')
  t.equal(run('{{if .Zf}}a{{else if .Z}}b{{else if .N}}c{{else}}d{{end}}'), 'd')
  t.equal(run('{{with .Rev}}{{.Name}}/{{.PodIP}}{{end}} {{with .E}}x{{else}}empty{{end}}'), 'rev-1/10.0.0.1 empty')
  // HEAD Go (1.23+) accepts {{else with}}.
  t.equal(run('{{with .Missing}}x{{else with .Str}}{{.}}{{end}}'), 'hé"<')
})

t.test('range over slices, maps (sorted keys), ints; else; break and continue', async (t) => {
  t.equal(run('{{range .S}}<{{.}}>{{end}} {{range $i, $e := .S}}{{$i}}={{$e}};{{end}} {{range $e := .S}}{{$e}}{{end}}'), '<a><b> 0=a;1=b; ab')
  t.equal(run('{{range $k, $v := .M}}{{$k}}:{{$v}} {{end}}|{{range .EM}}x{{else}}none{{end}}|{{range .Missing}}x{{else}}nothing{{end}}'),
    'a:1 b:2 |none|nothing')
  t.equal(run('{{range .Is}}{{if eq . 1}}{{continue}}{{end}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}'), '3')
  t.equal(run('{{range 3}}{{.}}{{end}}'), '012', 'Go 1.22+ ranges over ints')
  t.match(execError('{{range .F}}x{{end}}'), /range can't iterate over 1\.5$/)
})

t.test('variables: declare, assign, scope ends at {{end}}, $ is the data', async (t) => {
  t.equal(run('{{$x := 1}}{{$x}} {{$x = 2}}{{$x}} {{if true}}{{$x := 3}}{{$x}}{{end}} {{$x}}'), '1 2 3 2')
  t.equal(run('{{$x := 1}}{{$x := $x}}{{$x}}'), '1')
  t.equal(run('{{range .S}}{{$.I}}{{end}}'), '4242')
})

t.test('trim markers and comments', async (t) => {
  t.equal(run('  a  {{- .I -}}  b  '), '  a42b  ')
  t.equal(run('a {{- /* c */ -}} b'), 'ab')
  t.equal(run('a {{/* c */}} b'), 'a  b')
  t.equal(run('{{.I -}}\n\nx'), '42x')
  t.equal(run('{{-3}}'), '-3', '"{{-3}}" is a negative number, not a trim marker')
})

t.test('pipelines, parenthesised pipelines, literals', async (t) => {
  t.equal(run('{{"a" | printf "%s-%s" "b"}} {{.I | printf "%d"}} {{.S | len}} {{1 | not}}'), 'b-a 42 2 false')
  t.equal(run('{{(len .S) | printf "%03d"}} {{(index .Nested "A").B}}'), '002 deep')
  t.equal(run("{{1.5}} {{1e3}} {{0x1F}} {{0o17}} {{017}} {{1_000}} {{'a'}} {{-2}} {{+3}} {{.5}} {{0x1p-2}}"), '1.5 1000 31 15 15 1000 97 -2 3 0.5 0.25')
  t.equal(run('{{"\\u00e9\\x41\\101\\t"}}|{{`raw\\n`}}'), 'éAA\t|raw\\n')
})

t.test('index, len, slice: Go semantics including zero values for missing keys', async (t) => {
  t.equal(run('{{index .H "X-A"}} {{index .H "Nope"}} {{index .M "a"}} {{index .M "q"}} {{index .Nested "q"}}'), '[1 2] [] 1 0 <no value>')
  t.equal(run('{{index .S 1}} {{index .Str 0}} {{len .S}} {{len .Str}} {{len .M}}'), 'b 104 2 5 2')
  t.equal(run('{{slice .Str 1 3}} {{slice .S 1}} {{slice .S}}'), 'é [b] [a b]')
  t.equal(execError('{{index .S 5}}'), 'template: t:1:2: executing "t" at <index .S 5>: error calling index: index out of range: 5')
  t.equal(execError('{{index .S "x"}}'), 'template: t:1:2: executing "t" at <index .S "x">: error calling index: cannot index slice/array with type string')
  t.equal(execError('{{len .I}}'), 'template: t:1:2: executing "t" at <len .I>: error calling len: len of type int')
})

t.test('and/or short-circuit, not, comparisons', async (t) => {
  t.equal(run('{{and 1 0 2}} {{and 1 2}} {{or 0 "" "x"}} {{or 0 ""}} {{not .E}} {{and .Missing 1}} {{or .Missing}}'), '0 2 x  true <no value> <no value>')
  t.equal(run('{{eq 1 1}} {{eq 1 2 1}} {{eq "a" "a"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.0}} {{eq .N 1}}'), 'true true true true true true true false false')
  t.equal(execError('{{eq 1 1.0}}'), 'template: t:1:2: executing "t" at <eq 1 1.0>: error calling eq: incompatible types for comparison')
  t.equal(execError('{{lt true false}}'), 'template: t:1:2: executing "t" at <lt true false>: error calling lt: invalid type for comparison')
})

t.test('define, template and block', async (t) => {
  t.equal(run('{{define "x"}}[{{.}}]{{end}}{{template "x" .I}}{{template "x"}}'), '[42][<no value>]')
  t.equal(run('{{block "b" .S}}{{len .}}{{end}}'), '2')
  t.equal(execError('{{template "nope"}}'), 'template: t:1:11: executing "t" at <{{template "nope"}}>: template "nope" not defined')
})

t.test('execution errors name the node, position and cause as Go does', async (t) => {
  t.equal(execError('{{.Rev.Name}} {{.Rev.Foo}}'), 'template: t:1:20: executing "t" at <.Rev.Foo>: can\'t evaluate field Foo in type *http.RequestLogRevision')
  t.equal(execError('x\n  {{.Rev.Name.Foo}}'), 'template: t:2:8: executing "t" at <.Rev.Name.Foo>: can\'t evaluate field Foo in type string')
  t.equal(execError('{{.Rev.Name 1}}'), 'template: t:1:6: executing "t" at <.Rev.Name>: Name has arguments but cannot be invoked as function')
  t.equal(execError('{{1 2}}'), 'template: t:1:2: executing "t" at <1>: can\'t give argument to non-function 1')
  t.equal(execError('{{nil}}'), 'template: t:1:2: executing "t" at <nil>: nil is not a command')
  t.equal(execError('{{.N.Foo}}'), 'template: t:1:4: executing "t" at <.N.Foo>: nil pointer evaluating interface {}.Foo')
  t.equal(execError('{{printf}}'), 'template: t:1:2: executing "t" at <printf>: wrong number of args for printf: want at least 1 got 0')
  t.equal(execError('{{printf 5}}'), 'template: t:1:9: executing "t" at <5>: expected string; found 5')
  t.equal(execError('{{18446744073709551615}}'), 'template: t:1:2: executing "t" at <18446744073709551615>: 18446744073709551615 overflows int')
})

t.test('parse errors say what is wrong and on which line', async (t) => {
  const cases: [string, string][] = [
    ['{{.Foo', 'template: t:1: unclosed action'],
    ['{{if .T}}x', 'template: t:1: unexpected EOF'],
    ['{{end}}', 'template: t:1: unexpected {{end}}'],
    ['{{else}}', 'template: t:1: unexpected {{else}}'],
    ['{{if}}{{end}}', 'template: t:1: missing value for if'],
    ['{{}}', 'template: t:1: missing value for command'],
    ['{{foo}}', 'template: t:1: function "foo" not defined'],
    ['{{$x}}', 'template: t:1: undefined variable "$x"'],
    ['{{.A"x"}}', 'template: t:1: bad character U+0022 \'"\''],
    ['{{"abc}}', 'template: t:1: unterminated quoted string'],
    ['{{/* x }}', 'template: t:1: unclosed comment'],
    ['{{/* x */ }}', 'template: t:1: comment ends before closing delimiter'],
    ['{{1 | 2}}', 'template: t:1: non executable command in pipeline stage 2'],
    ['{{(1}}', 'template: t:1: unclosed left paren'],
    ['{{1)}}', 'template: t:1: unexpected ")" in command'],
    ['{{break}}', 'template: t:1: {{break}} outside {{range}}'],
    ['{{range $a, $b, $c := .}}{{end}}', 'template: t:1: too many declarations in range'],
    ['{{3a}}', 'template: t:1: bad number syntax: "3a"'],
    ['{{"x".Foo}}', 'template: t:1: unexpected . after term "\\"x\\""'],
    ['{{define "a"}}1{{end}}{{define "a"}}2{{end}}', 'template: t:1: template: multiple definition of template "a"'],
    ['{{if .T}}{{else}}{{else}}{{end}}', 'template: t:1: expected end; found {{else}}'],
    ['line1\n{{.Foo\nline3', 'template: t:3: function "line3" not defined'],
    ['line1\n{{.Foo\n', 'template: t:3: unclosed action started at t:2'],
    ['a\nb\n{{end}}', 'template: t:3: unexpected {{end}}'],
    ['{{08}}', 'template: t:1: integer overflow: "08"'],
    ['{{1__0}}', 'template: t:1: illegal number syntax: "1__0"'],
    ['{{"\\q"}}', 'template: t:1: invalid syntax'],
  ]
  for (const [src, message] of cases) t.equal(parseError(src), message, JSON.stringify(src))
})

t.test('a parsed template renders many times with different data', async (t) => {
  const tmpl = parseGoTemplate('{{.Rev.Name}}:{{.I}}', 't')
  for (let i = 0n; i < 3n; i++) t.equal(tmpl.execute({ ...data(), I: i }), `rev-1:${i}`)
  // The field cache must not mix up types seen at the same position.
  const other = { [goType]: { name: '*x.Other', fields: new Map([['Name', () => 'other']]) } }
  t.equal(tmpl.execute({ ...data(), Rev: other }), 'other:42')
})
