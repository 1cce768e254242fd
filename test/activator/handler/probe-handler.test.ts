// The html escaping of the activator's "unexpected probe header value"
// message (Go's html.EscapeString, spec §2.4). End-to-end probe answers are
// pinned in main-handler.test.ts.
import t from 'tap'
import { htmlEscape } from '@sluice/activator/handler/probe-handler'

t.test('Go\'s html.EscapeString: < > & \' " and nothing else', async (t) => {
  t.equal(htmlEscape('plain value-1_2.3'), 'plain value-1_2.3')
  t.equal(htmlEscape(`<a href="x">it's & co</a>`), '&lt;a href=&#34;x&#34;&gt;it&#39;s &amp; co&lt;/a&gt;')
  t.equal(htmlEscape('&amp;'), '&amp;amp;', 'already escaped text is escaped again')
  t.equal(htmlEscape(''), '')
})
