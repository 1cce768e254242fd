// HTTP/2 error codes (RFC 9113 §7), as numbers: reading them from
// node:http2's constants would load the whole http2 stack at start-up, which
// a pod that never sees an h2 connection does not need.

export const NGHTTP2_NO_ERROR = 0
export const NGHTTP2_INTERNAL_ERROR = 2
export const NGHTTP2_REFUSED_STREAM = 7
