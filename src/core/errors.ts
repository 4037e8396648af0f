/**
 * Error codes and typed errors. Codes travel on the wire in the
 * `Nats-Service-Error-Code` header (clients) and in replica replies (nodes),
 * so they are HTTP-like numbers that any NATS client can read.
 */
export const ErrorCode = {
  BadRequest: 400,
  NotFound: 404,
  ConditionFailed: 409,
  TooLarge: 413,
  Internal: 500,
  QuorumNotMet: 503,
  Timeout: 504,
  /** A replica's storage engine failed (disk full, Redis gone). */
  StorageUnavailable: 507,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const knownCodes = new Set<number>(Object.values(ErrorCode));

export function isErrorCode(n: number): n is ErrorCode {
  return knownCodes.has(n);
}

/** Base class: every expected failure has a code that can go on the wire. */
export class GodDbError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'GodDbError';
  }
}

export class BadRequestError extends GodDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.BadRequest, message, options);
    this.name = 'BadRequestError';
  }
}

export class NotFoundError extends GodDbError {
  constructor(message = 'not found') {
    super(ErrorCode.NotFound, message);
    this.name = 'NotFoundError';
  }
}

export class TooLargeError extends GodDbError {
  constructor(message: string) {
    super(ErrorCode.TooLarge, message);
    this.name = 'TooLargeError';
  }
}

export class QuorumNotMetError extends GodDbError {
  readonly answered: number;
  readonly needed: number;
  constructor(message: string, answered: number, needed: number, options?: { cause?: unknown }) {
    super(ErrorCode.QuorumNotMet, message, options);
    this.name = 'QuorumNotMetError';
    this.answered = answered;
    this.needed = needed;
  }
}

export class TimeoutError extends GodDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Timeout, message, options);
    this.name = 'TimeoutError';
  }
}

export class StorageError extends GodDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.StorageUnavailable, message, options);
    this.name = 'StorageError';
  }
}

/**
 * A request that conflicts with the current state of what it names (a
 * membership change the member's state does not allow, such as removing a
 * member that is up): 409, as a failed condition.
 */
export class ConflictError extends GodDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.ConditionFailed, message, options);
    this.name = 'ConflictError';
  }
}

/**
 * A conditional write whose condition did not hold (409); `context` is the
 * key's current context (opaque, as a read returns it) when it has a live value.
 */
export class ConditionFailedError extends ConflictError {
  constructor(
    message: string,
    readonly context: string | undefined,
  ) {
    super(message);
    this.name = 'ConditionFailedError';
  }
}

/** The request cannot be served now (a node without the machinery for it, a change already under way elsewhere): 503, try again later. */
export class UnavailableError extends GodDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.QuorumNotMet, message, options);
    this.name = 'UnavailableError';
  }
}

/** A timestamp or context too far ahead of the receiver's clock (more than the configured maximum skew). */
export class ClockSkewError extends GodDbError {
  constructor(message: string) {
    super(ErrorCode.BadRequest, message);
    this.name = 'ClockSkewError';
  }
}

/**
 * A replica refused a coordinator's new version because it would not
 * supersede what the replica holds: the replica has a version with a later
 * timestamp or a counter at least as large for the same writer (a clock
 * that went back, or a disk that was wiped). `floor` is the largest such
 * timestamp or counter; the coordinator moves its clock past it and writes
 * again, so that a write acknowledged later always wins over one
 * acknowledged earlier.
 */
export class StaleWriteError extends GodDbError {
  readonly floor: number;
  constructor(message: string, floor: number) {
    super(ErrorCode.ConditionFailed, message);
    this.name = 'StaleWriteError';
    this.floor = floor;
  }
}

/** Maps any code read off the wire to the matching typed error. */
export function errorFromCode(code: number, message: string): GodDbError {
  switch (code) {
    case ErrorCode.BadRequest:
      return new BadRequestError(message);
    case ErrorCode.NotFound:
      return new NotFoundError(message);
    case ErrorCode.TooLarge:
      return new TooLargeError(message);
    case ErrorCode.QuorumNotMet:
      return new QuorumNotMetError(message, -1, -1);
    case ErrorCode.Timeout:
      return new TimeoutError(message);
    case ErrorCode.StorageUnavailable:
      return new StorageError(message);
    default:
      return new GodDbError(isErrorCode(code) ? code : ErrorCode.Internal, message);
  }
}
