// The hello-world of Knative's samples: answers "Hello ${TARGET}!" on $PORT.
import http from 'node:http'

const port = Number(process.env.PORT ?? 8080)
const target = process.env.TARGET ?? 'World'

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
  res.end(`Hello ${target}!\n`)
})
server.listen(port, () => console.log(`helloworld: listening on port ${port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
