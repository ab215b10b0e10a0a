// Bad input on the write routes (an admin deposit and a signed withdrawal): malformed JSON, wrong
// types, missing and unknown fields, bad amounts and assets, oversize bodies, content types and
// unknown routes. Each gets the one error envelope and changes nothing.

import { describe, expect, it } from 'vitest'
import { bodyBytesMax } from '../../src/constants'
import {
  accountOf,
  api,
  bindings,
  expectError,
  expectRejectedUnchanged,
  newAccount,
  sendRaw,
  setUpApiTests,
  signedRaw,
  uid,
  type ApiKey,
  type Reply,
} from './helpers'

setUpApiTests()

/** The two write routes every case runs against. */
type Target = {
  name: string
  /** A valid body with `patch` merged in (an `undefined` value drops the field). */
  body: (patch?: Record<string, unknown>) => Record<string, unknown>
  send: (body: string, headers?: Record<string, string>) => Promise<Reply>
  /** The account's collateral, to show that nothing moved. */
  collateral: () => Promise<string>
}

async function targets(): Promise<Target[]> {
  const { accountId, key } = await newAccount('50')
  const merge = (base: Record<string, unknown>, patch: Record<string, unknown> = {}) => {
    const merged: Record<string, unknown> = { ...base, ...patch }
    for (const [field, value] of Object.entries(patch))
      if (value === undefined) delete merged[field]
    return merged
  }
  const collateral = async () => (await accountOf(key)).collateral as string
  return [
    {
      name: 'deposit',
      body: (patch) =>
        merge(
          { depositId: uid('dep'), accountId, asset: 'USD', amount: '10', signedAt: Date.now() },
          patch,
        ),
      send: (body, headers = {}) => api.admin('POST', '/v1/admin/deposits', body, headers),
      collateral,
    },
    {
      name: 'withdrawal',
      body: (patch) => merge({ withdrawalId: uid('wd'), asset: 'USD', amount: '10' }, patch),
      send: (body, headers = {}) => signedRaw(key, 'POST', '/v1/withdrawals', body, { headers }),
      collateral,
    },
  ]
}

async function expectEachRefused(
  body: (target: Target) => string,
  expected: { status: number; code: string },
  check?: (reply: Reply) => void,
) {
  for (const target of await targets()) {
    const reply = await expectRejectedUnchanged(() => target.send(body(target)), expected)
    check?.(reply)
    expect(await target.collateral(), target.name).toBe('50')
  }
}

const expectIssues = (reply: Reply) => {
  expect(reply.body.error.issues).toEqual(expect.any(Array))
  expect(reply.body.error.issues.length).toBeGreaterThan(0)
}

describe('malformed JSON', () => {
  it.each([
    ['an unterminated object', '{"amount": "1"'],
    ['single quotes', "{'amount': '1'}"],
    ['a trailing comma', '{"asset": "USD",}'],
    ['NaN', 'NaN'],
    ['an empty body', ''],
    ['plain text', 'withdraw 10 USD'],
  ])('refuses %s with 400 malformed_json', async (_, text) => {
    await expectEachRefused(() => text, { status: 400, code: 'malformed_json' })
  })

  it.each([
    ['an array', '[]'],
    ['a string', '"USD"'],
    ['a number', '10'],
    ['null', 'null'],
  ])('refuses %s as the body with 400 validation_failed', async (_, text) => {
    await expectEachRefused(() => text, { status: 400, code: 'validation_failed' }, expectIssues)
  })
})

describe('fields', () => {
  it.each([
    ['amount as the JSON number 100', { amount: 100 }, /decimal string/],
    ['amount as the JSON number 100.5', { amount: 100.5 }, /decimal string/],
    ['amount as null', { amount: null }, /decimal string/],
    ['amount as a boolean', { amount: true }, /decimal string/],
    ['amount as an object', { amount: { value: '1' } }, /decimal string/],
    ['asset as a number', { asset: 1 }, /USD/],
  ])('refuses %s with 400 validation_failed', async (_, patch, message) => {
    await expectEachRefused(
      (target) => JSON.stringify(target.body(patch)),
      { status: 400, code: 'validation_failed' },
      (reply) => {
        expectIssues(reply)
        expect(reply.body.error.message).toMatch(message)
      },
    )
  })

  it('refuses request ids as numbers with 400 validation_failed', async () => {
    const [deposit, withdrawal] = await targets()
    for (const patch of [{ depositId: 7 }, { accountId: 7 }]) {
      const reply = await expectRejectedUnchanged(
        () => deposit!.send(JSON.stringify(deposit!.body(patch))),
        { status: 400, code: 'validation_failed' },
      )
      expect(reply.body.error.message).toMatch(/must be a string/)
    }
    const reply = await expectRejectedUnchanged(
      () => withdrawal!.send(JSON.stringify(withdrawal!.body({ withdrawalId: 7 }))),
      { status: 400, code: 'validation_failed' },
    )
    expect(reply.body.error.message).toMatch(/withdrawalId must be a string/)
    expect(await withdrawal!.collateral()).toBe('50')
  })

  it.each(['depositId', 'accountId', 'asset', 'amount'])(
    'refuses a deposit without %s with 400 validation_failed',
    async (field) => {
      const [deposit] = await targets()
      const reply = await expectRejectedUnchanged(
        () => deposit!.send(JSON.stringify(deposit!.body({ [field]: undefined }))),
        { status: 400, code: 'validation_failed' },
      )
      expect(reply.body.error.issues.map((i: { path: string }) => i.path)).toContain(field)
    },
  )

  it.each(['asset', 'amount'])(
    'refuses a withdrawal without %s with 400 validation_failed',
    async (field) => {
      const [, withdrawal] = await targets()
      const reply = await expectRejectedUnchanged(
        () => withdrawal!.send(JSON.stringify(withdrawal!.body({ [field]: undefined }))),
        { status: 400, code: 'validation_failed' },
      )
      expect(reply.body.error.issues.map((i: { path: string }) => i.path)).toContain(field)
      expect(await withdrawal!.collateral()).toBe('50')
    },
  )

  it.each([
    ['a note', { note: 'hi' }],
    ['a second account', { toAccount: 'someone-else' }],
    ['a status', { status: 'approved' }],
    ['a __proto__ key', JSON.parse('{"__proto__": {"admin": true}}')],
  ])('refuses an unknown field (%s) with 400 validation_failed', async (_, patch) => {
    await expectEachRefused(
      (target) => JSON.stringify(target.body(patch)),
      { status: 400, code: 'validation_failed' },
      expectIssues,
    )
  })

  it.each([
    ['EUR', 'EUR'],
    ['lower-case usd', 'usd'],
    ['USD with a space', 'USD '],
    ['an empty asset', ''],
  ])('refuses asset %s with 400 validation_failed', async (_, asset) => {
    await expectEachRefused(
      (target) => JSON.stringify(target.body({ asset })),
      { status: 400, code: 'validation_failed' },
      (reply) => expect(reply.body.error.message).toMatch(/asset must be "USD"/),
    )
  })
})

describe('amounts', () => {
  it.each([
    ['an exponent', '1e3'],
    ['an upper-case exponent', '1E2'],
    ['seven decimals', '1.0000001'],
    ['a negative amount', '-5'],
    ['negative zero', '-0'],
    ['zero', '0'],
    ['zero with decimals', '0.000000'],
    ['one unit over the limit', '1000000000000.000001'],
    ['far over the limit', '99999999999999999999'],
    ['an empty string', ''],
    ['letters', 'ten'],
    ['a leading space', ' 1'],
    ['a plus sign', '+1'],
    ['a bare fraction', '.5'],
    ['a trailing dot', '5.'],
    ['leading zeros', '007'],
    ['a decimal comma', '1,5'],
    ['hexadecimal', '0x10'],
    ['Infinity', 'Infinity'],
    ['over 40 characters', '1' + '0'.repeat(40)],
  ])('refuses %s with 400 validation_failed', async (_, amount) => {
    await expectEachRefused(
      (target) => JSON.stringify(target.body({ amount })),
      { status: 400, code: 'validation_failed' },
      (reply) => {
        expect(reply.body.error.message).toMatch(/^amount: /)
        expectIssues(reply)
      },
    )
  })

  it('accepts six decimals and trailing zeros, answering the canonical amount', async () => {
    const [deposit, withdrawal] = await targets()
    const deposited = await deposit!.send(JSON.stringify(deposit!.body({ amount: '0.123456' })))
    expect(deposited.status).toBe(201)
    expect(deposited.body.amount).toBe('0.123456')
    const withdrawn = await withdrawal!.send(
      JSON.stringify(withdrawal!.body({ amount: '10.100000' })),
    )
    expect(withdrawn.status).toBe(201)
    expect(withdrawn.body.amount).toBe('10.1')
    expect(await withdrawal!.collateral()).toBe('40.023456')
  })
})

describe('body size', () => {
  const padded = (target: Target, bytes: number) => {
    const body = target.body({ pad: '' })
    const bare = JSON.stringify(body).length
    return JSON.stringify({ ...body, pad: 'x'.repeat(bytes - bare) })
  }

  it(`refuses a body over ${bodyBytesMax} bytes with 413 body_too_large`, async () => {
    for (const bytes of [bodyBytesMax + 1, 64 * 1024, 1024 * 1024]) {
      await expectEachRefused(
        (target) => {
          const text = padded(target, bytes)
          expect(new TextEncoder().encode(text).byteLength).toBe(bytes)
          return text
        },
        { status: 413, code: 'body_too_large' },
        (reply) => expect(reply.body.error.message).toContain(String(bodyBytesMax)),
      )
    }
  })

  it('a body of exactly the limit is read (and refused only for its unknown field)', async () => {
    await expectEachRefused((target) => padded(target, bodyBytesMax), {
      status: 400,
      code: 'validation_failed',
    })
  })

  it('refuses an oversize body sent without a length (streamed) with 413', async () => {
    const chunk = new TextEncoder().encode(' '.repeat(4096))
    const stream = () => {
      let sent = 0
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 8) controller.enqueue(chunk)
          else controller.close()
        },
      })
    }
    await expectRejectedUnchanged(
      () =>
        sendRaw(
          'POST',
          '/v1/admin/deposits',
          {
            authorization: `Bearer ${bindings.ADMIN_TOKEN}`,
            'content-type': 'application/json',
          },
          stream(),
        ),
      { status: 413, code: 'body_too_large' },
    )
  })
})

describe('content type', () => {
  // A JSON body sent as another media type (or as none) must not be silently read as `{}`.
  it.each(['text/plain', 'application/x-www-form-urlencoded', undefined])(
    'refuses a body with Content-Type %s with 415 unsupported_media_type',
    async (contentType) => {
      const { accountId, key } = await newAccount('50')
      const headers: Record<string, string | undefined> = { 'content-type': contentType }
      const admin = (path: string, body: unknown) =>
        sendRaw(
          'POST',
          path,
          withoutUndefined({ authorization: `Bearer ${bindings.ADMIN_TOKEN}`, ...headers }),
          new TextEncoder().encode(JSON.stringify(body)),
        )
      const cases: [string, () => Promise<Reply>][] = [
        ['create account', () => admin('/v1/admin/accounts', { accountId: uid('typed') })],
        ['create key', () => admin(`/v1/admin/accounts/${accountId}/keys`, { scopes: ['read'] })],
        [
          'deposit',
          () =>
            admin('/v1/admin/deposits', {
              depositId: uid('dep'),
              accountId,
              asset: 'USD',
              amount: '1',
              signedAt: Date.now(),
            }),
        ],
        [
          'withdrawal',
          () =>
            signedRaw(
              key as ApiKey,
              'POST',
              '/v1/withdrawals',
              JSON.stringify({ withdrawalId: uid('wd'), asset: 'USD', amount: '1' }),
              { headers, bodyAsBytes: true },
            ),
        ],
      ]
      const failures: string[] = []
      for (const [name, send] of cases) {
        await expectRejectedUnchanged(send, { status: 415, code: 'unsupported_media_type' }).catch(
          (error: Error) => failures.push(`${name}: ${error.message.split('\n')[0]}`),
        )
      }
      expect(failures).toEqual([])
    },
  )

  it('accepts application/json with a charset', async () => {
    const { accountId } = await newAccount('0')
    const reply = await sendRaw(
      'POST',
      '/v1/admin/deposits',
      {
        authorization: `Bearer ${bindings.ADMIN_TOKEN}`,
        'content-type': 'application/json; charset=utf-8',
      },
      JSON.stringify({
        depositId: uid('dep'),
        accountId,
        asset: 'USD',
        amount: '1',
        signedAt: Date.now(),
      }),
    )
    expect(reply.status).toBe(201)
  })
})

describe('routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/v1'],
    ['POST', '/v1/account'],
    ['PUT', '/v1/withdrawals'],
    ['DELETE', '/v1/ledger'],
  ])('answers %s %s with 404 route_not_found', async (method, path) => {
    const reply = await expectRejectedUnchanged(() => api.plain(method, path), {
      status: 404,
      code: 'route_not_found',
    })
    expect(reply.body.error.message).toContain(path)
  })

  it('an unknown admin route needs the token first, then is 404', async () => {
    await expectRejectedUnchanged(() => api.plain('GET', '/v1/admin/nope'), {
      status: 401,
      code: 'missing_admin_token',
    })
    await expectRejectedUnchanged(() => api.admin('GET', '/v1/admin/nope'), {
      status: 404,
      code: 'route_not_found',
    })
  })

  it('every error carries a distinct request id, echoed in X-Request-Id', async () => {
    const first = await api.plain('GET', '/nope')
    const second = await api.plain('GET', '/nope')
    expectError(first, { status: 404, code: 'route_not_found' })
    expectError(second, { status: 404, code: 'route_not_found' })
    expect(first.body.error.requestId).not.toBe(second.body.error.requestId)
  })
})

function withoutUndefined(headers: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined),
  )
}
