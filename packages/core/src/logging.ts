// pino set up to print what Knative's zap config prints (timestamp, severity,
// logger, message), to a synchronous stdout destination: no worker threads.
import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

const LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])

/** Maps a zap level name to pino's (zap has dpanic/panic, pino has no such levels). */
export function toPinoLevel(level: string | undefined, fallback: LevelWithSilent = 'info'): LevelWithSilent {
  if (!level) return fallback
  const l = level.toLowerCase()
  if (l === 'dpanic' || l === 'panic') return 'fatal'
  if (l === 'warning') return 'warn'
  return LEVELS.has(l) ? (l as LevelWithSilent) : fallback
}

/** Reads `level` out of a zap JSON config (SERVING_LOGGING_CONFIG); tolerant of junk. */
export function zapConfigLevel(zapConfig: string | undefined): string | undefined {
  if (!zapConfig) return undefined
  try {
    const parsed = JSON.parse(zapConfig) as { level?: unknown }
    return typeof parsed.level === 'string' ? parsed.level : undefined
  } catch {
    return undefined
  }
}

export interface LoggerOptions {
  name: string
  level?: string | undefined
  bindings?: Record<string, string>
  /** File descriptor to write to; 1 (stdout) by default. */
  fd?: number
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: toPinoLevel(opts.level),
      messageKey: 'message',
      base: { logger: opts.name, ...opts.bindings },
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ severity: label.toUpperCase() }) },
    },
    pino.destination({ dest: opts.fd ?? 1, sync: true }),
  )
}
