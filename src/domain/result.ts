// Expected rejections travel as values (TigerBeetle's result codes), never as exceptions.

export type Ok<T> = { ok: true; value: T }
export type Rejected<C extends string = string> = { ok: false; code: C; message: string }
export type Result<T, C extends string = string> = Ok<T> | Rejected<C>

export const ok = <T>(value: T): Ok<T> => ({ ok: true, value })
export const reject = <C extends string>(code: C, message: string): Rejected<C> => ({
  ok: false,
  code,
  message,
})
