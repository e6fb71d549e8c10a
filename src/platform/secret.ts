/**
 * A value that must never be printed: it shows as `<secret>` in logs, JSON and inspection.
 */
const inspect = Symbol.for('nodejs.util.inspect.custom');

export class Secret<T = string> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  /** The secret itself; call only where it is used, never to log. */
  reveal(): T {
    return this.#value;
  }
  toString(): string {
    return '<secret>';
  }
  toJSON(): string {
    return '<secret>';
  }
  [inspect](): string {
    return '<secret>';
  }
}
