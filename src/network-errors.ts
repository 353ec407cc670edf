/**
 * Node's socket error codes that say a service (the store, object storage) is out of reach for
 * now: down, restarting, a network blip. A call that failed so is worth trying again; the
 * store's and object storage's patience both start from this list.
 */
export const UNREACHABLE_SOCKET_CODES: readonly string[] = [
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
];
