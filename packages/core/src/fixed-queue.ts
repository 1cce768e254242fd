// A growable ring buffer: O(1) push/shift without Array#shift's copying.
// Used for breaker waiters and the activator's request queues.

export class FixedQueue<T> {
  private buf: (T | undefined)[]
  private head = 0
  private tail = 0
  private count = 0

  constructor(initialCapacity = 16) {
    let cap = 1
    while (cap < initialCapacity) cap <<= 1
    this.buf = new Array<T | undefined>(cap)
  }

  get length(): number {
    return this.count
  }

  push(item: T): void {
    if (this.count === this.buf.length) this.grow()
    this.buf[this.tail] = item
    this.tail = (this.tail + 1) & (this.buf.length - 1)
    this.count++
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined
    const item = this.buf[this.head]
    this.buf[this.head] = undefined
    this.head = (this.head + 1) & (this.buf.length - 1)
    this.count--
    return item
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.buf[this.head]
  }

  /** Drop every item (keeps the buffer). */
  clear(): void {
    this.buf.fill(undefined)
    this.head = 0
    this.tail = 0
    this.count = 0
  }

  private grow(): void {
    const old = this.buf
    const next = new Array<T | undefined>(old.length * 2)
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) & (old.length - 1)]
    this.buf = next
    this.head = 0
    this.tail = this.count
  }
}
