// Each command over a fresh shard document: what it writes when it succeeds, what it answers on a
// retry, and that a rejection (or a replay) leaves the document byte-identical.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { amountUnitsMax } from '../../src/constants'
import * as ledger from '../../src/domain/ledger'
import * as money from '../../src/domain/money'
import * as accountIndex from '../../src/state/account-index'
import * as commands from '../../src/state/commands'
import * as shard from '../../src/state/shard-doc'
import { balanceOf, context, figuresOf, run, snapshot, withdraw } from './harness'

const n1 = context('n1', 1_000)
const n2 = context('n2', 2_000)

function fresh() {
  const doc = new Y.Doc()
  return { doc, index: accountIndex.observe(doc) }
}

/** Runs a command that must be refused (or replayed) and checks it changed nothing at all. */
function unchanged<T>(doc: Y.Doc, command: () => commands.CommandResult<T>) {
  const before = snapshot(doc)
  const { result, updates } = run(doc, command)
  expect(updates).toEqual([])
  expect(snapshot(doc)).toEqual(before)
  return result
}

/** Runs a command that must be accepted and checks it made exactly one update. */
function accepted<T>(doc: Y.Doc, command: () => commands.CommandResult<T>): T {
  const before = snapshot(doc)
  const { result, updates } = run(doc, command)
  if (!result.ok) throw new Error(`expected acceptance, got ${result.code}: ${result.message}`)
  expect(result.value.replayed).toBe(false)
  expect(updates).toHaveLength(1)
  expect(snapshot(doc).stateVector).not.toBe(before.stateVector)
  return result.value.record
}

const depositInput = (accountId: string, depositId: string, amount: bigint, digest = 'd') => ({
  accountId,
  depositId,
  amount,
  requestDigest: digest,
})

const withdrawalInput = (
  accountId: string,
  withdrawalId: string,
  amount: bigint,
  digest = 'w',
) => ({
  accountId,
  withdrawalId,
  amount,
  requestDigest: digest,
})

describe('createAccount', () => {
  it('writes the account record once', () => {
    const { doc } = fresh()
    const record = accepted(doc, () => commands.createAccount(doc, { accountId: 'alice' }, n1))
    expect(record).toEqual({ accountId: 'alice', createdAt: 1_000, node: 'n1' })
    expect(shard.accounts(doc).get('alice')).toEqual(record)
  })

  it('replays on the same id: the original record, no change', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    const result = unchanged(doc, () => commands.createAccount(doc, { accountId: 'alice' }, n2))
    expect(result).toEqual({
      ok: true,
      value: { record: { accountId: 'alice', createdAt: 1_000, node: 'n1' }, replayed: true },
    })
  })
})

describe('createKey', () => {
  const key = (accountId: string, keyId = 'k1') => ({
    keyId,
    accountId,
    scopes: ['read', 'withdraw'] as shard.Scope[],
    label: 'desk',
  })

  it('needs the account', () => {
    const { doc } = fresh()
    expect(unchanged(doc, () => commands.createKey(doc, key('alice'), n1))).toEqual({
      ok: false,
      code: 'account_not_found',
      message: 'no account alice',
    })
    expect(shard.keys(doc).size).toBe(0)
  })

  it('writes the key with a copy of its scopes', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    const input = key('alice')
    const record = accepted(doc, () => commands.createKey(doc, input, n2))
    expect(record).toEqual({ ...input, createdAt: 2_000, node: 'n2' })
    input.scopes.push('trade')
    expect(shard.keys(doc).get('k1')?.scopes).toEqual(['read', 'withdraw'])
  })

  it('refuses a key id already taken, even by the same request', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    commands.createKey(doc, key('alice'), n1)
    expect(unchanged(doc, () => commands.createKey(doc, key('alice'), n1))).toEqual({
      ok: false,
      code: 'idempotency_conflict',
      message: 'key k1 already exists',
    })
  })
})

describe('revokeKey', () => {
  it('needs the key', () => {
    const { doc } = fresh()
    expect(unchanged(doc, () => commands.revokeKey(doc, { keyId: 'k1' }, n1))).toEqual({
      ok: false,
      code: 'key_not_found',
      message: 'no API key k1',
    })
  })

  it('revokes once and replays the first revocation', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    commands.createKey(doc, { keyId: 'k1', accountId: 'alice', scopes: ['read'], label: 'x' }, n1)
    const record = accepted(doc, () => commands.revokeKey(doc, { keyId: 'k1' }, n1))
    expect(record).toEqual({ keyId: 'k1', revokedAt: 1_000, node: 'n1' })
    expect(unchanged(doc, () => commands.revokeKey(doc, { keyId: 'k1' }, n2))).toEqual({
      ok: true,
      value: { record, replayed: true },
    })
  })
})

describe('deposit', () => {
  it('requires the account', () => {
    const { doc } = fresh()
    expect(
      unchanged(doc, () => commands.deposit(doc, depositInput('alice', 'd1', 5n), n1)),
    ).toEqual({ ok: false, code: 'account_not_found', message: 'no account alice' })
  })

  it('writes one transfer from @external under deposit/<account>/<id>', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    const record = accepted(doc, () =>
      commands.deposit(doc, depositInput('alice', 'd1', 1_250_500_000n, 'digest-1'), n2),
    )
    expect(record).toEqual({
      id: 'deposit/alice/d1',
      kind: 'deposit',
      from: ledger.externalAccount,
      to: 'alice',
      amount: '1250.5',
      ts: 2_000,
      node: 'n2',
      requestDigest: 'digest-1',
    })
    expect(shard.transfers(doc).get('deposit/alice/d1')).toEqual(record)
    expect(balanceOf(doc, 'alice')).toBe(1_250_500_000n)
  })

  it('replays the same digest without a second credit', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    const first = commands.deposit(doc, depositInput('alice', 'd1', 5n, 'same'), n1)
    const again = unchanged(doc, () =>
      commands.deposit(doc, depositInput('alice', 'd1', 5n, 'same'), n2),
    )
    expect(first.ok && again.ok).toBe(true)
    if (first.ok && again.ok) expect(again.value).toEqual({ ...first.value, replayed: true })
    expect(balanceOf(doc, 'alice')).toBe(5n)
  })

  it('answers idempotency_conflict to the same id with another digest', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    commands.deposit(doc, depositInput('alice', 'd1', 5n, 'first'), n1)
    expect(
      unchanged(doc, () => commands.deposit(doc, depositInput('alice', 'd1', 7n, 'second'), n1)),
    ).toEqual({
      ok: false,
      code: 'idempotency_conflict',
      message: 'request id of deposit/alice/d1 was already used with a different payload',
    })
    expect(balanceOf(doc, 'alice')).toBe(5n)
  })

  it('scopes request ids by account', () => {
    const { doc } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    commands.createAccount(doc, { accountId: 'bob' }, n1)
    accepted(doc, () => commands.deposit(doc, depositInput('alice', 'd1', 5n), n1))
    accepted(doc, () => commands.deposit(doc, depositInput('bob', 'd1', 7n), n1))
    expect([balanceOf(doc, 'alice'), balanceOf(doc, 'bob')]).toEqual([5n, 7n])
  })
})

describe('withdraw', () => {
  function funded(units: bigint) {
    const { doc, index } = fresh()
    commands.createAccount(doc, { accountId: 'alice' }, n1)
    commands.createAccount(doc, { accountId: 'bob' }, n1)
    if (units > 0n) commands.deposit(doc, depositInput('alice', 'd1', units), n1)
    return { doc, index }
  }

  it('requires the account', () => {
    const { doc, index } = fresh()
    expect(
      unchanged(doc, () => withdraw(doc, index, withdrawalInput('alice', 'w1', 1n), n1)),
    ).toEqual({ ok: false, code: 'account_not_found', message: 'no account alice' })
  })

  it('approves within the balance and writes one transfer to @external', () => {
    const { doc, index } = funded(100_000_000n)
    const record = accepted(doc, () =>
      withdraw(doc, index, withdrawalInput('alice', 'w1', 40_500_000n, 'wd'), n2),
    )
    expect(record).toEqual({
      id: 'withdrawal/alice/w1',
      kind: 'withdrawal',
      from: 'alice',
      to: ledger.externalAccount,
      amount: '40.5',
      ts: 2_000,
      node: 'n2',
      requestDigest: 'wd',
    })
    expect(balanceOf(doc, 'alice')).toBe(59_500_000n)
  })

  it('approves exactly the balance and refuses one unit more, changing nothing', () => {
    const { doc, index } = funded(100_000_000n)
    expect(
      unchanged(doc, () => withdraw(doc, index, withdrawalInput('alice', 'w1', 100_000_001n), n1)),
    ).toEqual({
      ok: false,
      code: 'insufficient_funds',
      message: 'withdrawal of 100.000001 USD exceeds the withdrawable 100 USD',
    })
    accepted(doc, () => withdraw(doc, index, withdrawalInput('alice', 'w1', 100_000_000n), n1))
    expect(balanceOf(doc, 'alice')).toBe(0n)
    expect(
      unchanged(doc, () => withdraw(doc, index, withdrawalInput('alice', 'w2', 1n), n1)),
    ).toMatchObject({ ok: false, code: 'insufficient_funds' })
  })

  it("never draws on another account's money", () => {
    const { doc, index } = funded(100_000_000n)
    expect(
      unchanged(doc, () => withdraw(doc, index, withdrawalInput('bob', 'w1', 1n), n1)),
    ).toEqual({
      ok: false,
      code: 'insufficient_funds',
      message: 'withdrawal of 0.000001 USD exceeds the withdrawable 0 USD',
    })
  })

  it('replays an approved withdrawal even after the balance is gone', () => {
    const { doc, index } = funded(10n)
    const first = withdraw(doc, index, withdrawalInput('alice', 'w1', 10n, 'x'), n1)
    expect(first).toMatchObject({ ok: true, value: { replayed: false } })
    const again = unchanged(doc, () =>
      withdraw(doc, index, withdrawalInput('alice', 'w1', 10n, 'x'), n2),
    )
    expect(again).toMatchObject({ ok: true, value: { replayed: true } })
    if (first.ok && again.ok) expect(again.value.record).toEqual(first.value.record)
    expect(balanceOf(doc, 'alice')).toBe(0n)
  })

  it('answers idempotency_conflict before judging funds', () => {
    const { doc, index } = funded(10n)
    withdraw(doc, index, withdrawalInput('alice', 'w1', 10n, 'x'), n1)
    expect(
      unchanged(doc, () =>
        withdraw(doc, index, withdrawalInput('alice', 'w1', 10n ** 9n, 'y'), n1),
      ),
    ).toEqual({
      ok: false,
      code: 'idempotency_conflict',
      message: 'request id of withdrawal/alice/w1 was already used with a different payload',
    })
  })

  it('keeps deposit and withdrawal ids apart', () => {
    const { doc, index } = funded(10n)
    accepted(doc, () => withdraw(doc, index, withdrawalInput('alice', 'd1', 4n, 'd'), n1))
    expect(balanceOf(doc, 'alice')).toBe(6n)
  })

  it('the figures a withdrawal is decided on are the fold of the account (no markets)', () => {
    const { doc, index } = funded(10n)
    withdraw(doc, index, withdrawalInput('alice', 'w1', 4n), n1)
    expect(figuresOf(index, 'alice')).toEqual({
      collateral: 6n,
      unrealizedPnl: 0n,
      initialMargin: 0n,
      maintenanceMargin: 0n,
    })
    expect(figuresOf(index, 'carol').collateral).toBe(0n)
  })
})

describe('amounts a command is handed', () => {
  // The API parses amounts with money.usdTransfer, but the commands accept any bigint: a
  // transfer written with amount <= 0 or over the limit cannot be read back (ledger.amountUnits
  // asserts), so one such write makes every later fold of the shard throw, on every replica it
  // reaches. The command must refuse it (a rejection or an assertion) before writing anything.
  const outOfRange = [0n, -1n, -(10n ** 6n), amountUnitsMax + 1n]

  it('deposit refuses amounts outside (0, amountUnitsMax] and writes nothing', () => {
    for (const amount of outOfRange) {
      const { doc } = fresh()
      commands.createAccount(doc, { accountId: 'alice' }, n1)
      const before = snapshot(doc)
      const outcome = attempt(() =>
        run(doc, () => commands.deposit(doc, depositInput('alice', 'd', amount), n1)),
      )
      expect({ amount, ...outcome }).toEqual({ amount, accepted: false })
      expect(snapshot(doc)).toEqual(before)
    }
  })

  it('withdraw refuses amounts outside (0, amountUnitsMax] and writes nothing', () => {
    for (const amount of outOfRange) {
      const { doc, index } = fresh()
      commands.createAccount(doc, { accountId: 'alice' }, n1)
      for (const id of ['d1', 'd2']) {
        commands.deposit(doc, depositInput('alice', id, amountUnitsMax, id), n1)
      }
      const before = snapshot(doc)
      const outcome = attempt(() =>
        run(doc, () => withdraw(doc, index, withdrawalInput('alice', 'w', amount), n1)),
      )
      expect({ amount, ...outcome }).toEqual({ amount, accepted: false })
      expect(snapshot(doc)).toEqual(before)
      expect(balanceOf(doc, 'alice')).toBe(2n * amountUnitsMax)
    }
  })
})

/** Whether a command was accepted; a thrown assertion counts as a refusal. */
function attempt(command: () => { result: commands.CommandResult<unknown> }): {
  accepted: boolean
} {
  let result: commands.CommandResult<unknown>
  try {
    result = command().result
  } catch (error) {
    expect(error).toBeInstanceOf(Error)
    return { accepted: false }
  }
  return { accepted: result.ok }
}

// --- against a reference model ------------------------------------------------------------------

type Op = {
  kind: 'deposit' | 'withdrawal'
  account: 'alice' | 'bob'
  /** A small pool so that retries (same id) happen often. */
  requestId: string
  amount: bigint
}

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('deposit' as const, 'withdrawal' as const),
  account: fc.constantFrom('alice' as const, 'bob' as const),
  requestId: fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5', 'r6'),
  amount: fc.oneof(
    fc.bigInt({ min: 1n, max: 1_000n }),
    fc.bigInt({ min: 1n, max: amountUnitsMax }),
  ),
})

/** The payload digest: the same id with another amount is another request. */
const digestOf = (op: Op) => `${op.kind}:${op.account}:${op.requestId}:${op.amount}`

describe('commands against a reference model', () => {
  it('balances are never negative and equal approved deposits minus approved withdrawals', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const { doc, index } = fresh()
        commands.createAccount(doc, { accountId: 'alice' }, n1)
        commands.createAccount(doc, { accountId: 'bob' }, n1)
        const model = {
          balance: new Map<string, bigint>([
            ['alice', 0n],
            ['bob', 0n],
          ]),
          requests: new Map<string, string>(),
        }
        for (const op of ops) {
          const key = `${op.kind}/${op.account}/${op.requestId}`
          const digest = digestOf(op)
          const balance = model.balance.get(op.account)!
          const seen = model.requests.get(key)
          const expected =
            seen !== undefined
              ? seen === digest
                ? 'replayed'
                : 'idempotency_conflict'
              : op.kind === 'withdrawal' && op.amount > balance
                ? 'insufficient_funds'
                : 'written'
          if (expected === 'written') {
            model.requests.set(key, digest)
            model.balance.set(
              op.account,
              balance + (op.kind === 'deposit' ? op.amount : -op.amount),
            )
          }
          const command = () =>
            op.kind === 'deposit'
              ? commands.deposit(doc, depositInput(op.account, op.requestId, op.amount, digest), n1)
              : withdraw(
                  doc,
                  index,
                  withdrawalInput(op.account, op.requestId, op.amount, digest),
                  n1,
                )
          const result = expected === 'written' ? run(doc, command).result : unchanged(doc, command)
          const actual = result.ok ? (result.value.replayed ? 'replayed' : 'written') : result.code
          expect(actual).toBe(expected)
          for (const account of ['alice', 'bob']) {
            const folded = balanceOf(doc, account)
            expect(folded).toBeGreaterThanOrEqual(0n)
            expect(folded).toBe(model.balance.get(account))
            expect(figuresOf(index, account).collateral).toBe(folded)
          }
        }
        expect(ledger.conservation([...shard.transfers(doc).values()]).deposits).toBe(
          money.formatUsd(
            [...model.requests]
              .filter(([key]) => key.startsWith('deposit/'))
              .reduce((sum, [, digest]) => sum + BigInt(digest.split(':')[3]!), 0n),
          ),
        )
      }),
      { numRuns: 200 },
    )
  })
})

describe('requestRights', () => {
  const freshMs = 10_000
  const ask = (doc: Y.Doc, now: number) =>
    commands.requestRights(doc, 'alice', 3_000_000n, ['n2', 'n3'], context('n1', now), freshMs)

  it('asks again only once a peer granted the open request, or it went stale', () => {
    const { doc } = fresh()
    const first = ask(doc, 1_000)
    expect(first).toMatchObject({ id: 'alice/n1/1000', node: 'n1', amount: '3', ts: 1_000 })
    // Open: fresh and unanswered, so a second refusal writes nothing.
    expect(ask(doc, 2_000)).toBeUndefined()
    expect([...shard.rightsRequests(doc).keys()]).toEqual(['alice/n1/1000'])
    // A grant from either peer answers it: the next refusal asks at once.
    commands.grantRights(doc, first!, 5_000_000n, context('n3', 2_500))
    const second = ask(doc, 3_000)
    expect(second?.id).toBe('alice/n1/3000')
    // Unanswered, the new request stands until it is stale.
    expect(ask(doc, 3_000 + freshMs - 1)).toBeUndefined()
    expect(ask(doc, 3_000 + freshMs)?.id).toBe(`alice/n1/${3_000 + freshMs}`)
  })

  it('grants once per request and giver', () => {
    const { doc } = fresh()
    const request = ask(doc, 1_000)!
    expect(commands.grantRights(doc, request, 1n, context('n2', 1_100))?.id).toBe(
      'alice/n1/1000/n2',
    )
    expect(commands.grantRights(doc, request, 9n, context('n2', 1_200))).toBeUndefined()
    expect(shard.grants(doc).get('alice/n1/1000/n2')?.amount).toBe(money.formatUsd(1n))
  })

  it('is answered only by a grant for that very request', () => {
    const { doc } = fresh()
    ask(doc, 1_000)
    // n2 asks for bob and n1 grants it: that answers n2's request, not n1's for alice.
    const bobs = commands.requestRights(doc, 'bob', 1n, ['n1'], context('n2', 1_000), freshMs)!
    commands.grantRights(doc, bobs, 1n, context('n1', 1_100))
    expect(ask(doc, 2_000)).toBeUndefined()
  })
})
