// The dashboard in a real browser (Debian's headless Chromium, driven by puppeteer-core) against a
// proxied 3-node mesh: node a's page asks for the admin token, shows three reachable nodes with
// every link up and every document agreeing; with c isolated at the proxies it shows c
// unreachable and both of c's links down (a screenshot of that is taken: to a temporary file, or
// with DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the README's picture); after the heal,
// all up again. Assertions read the page's text and data attributes, never pixels.

import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMesh, waitFor, type Mesh } from './support/mesh'

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const screenshot = process.env.DASHBOARD_SCREENSHOT ?? join(tmpdir(), 'clearmesh-dashboard.png')

/** The page's view of the mesh: each node's reachability, each link's state, documents agreeing. */
type Seen = {
  nodes: Record<string, string>
  links: Record<string, string>
  linkText: Record<string, string>
  documents: number
  agreeing: number
}

// Runs in the page: the project's types are the Workers' and Node's, not the DOM's.
const seen = (page: Page): Promise<Seen> =>
  page.evaluate(() => {
    const all = (selector: string): any[] => [
      ...(globalThis as any).document.querySelectorAll(selector),
    ]
    const by = (selector: string, key: string, value: (el: any) => string) =>
      Object.fromEntries(all(selector).map((el) => [el.dataset[key], value(el)]))
    const docs = all('#documents tr[data-doc]')
    return {
      nodes: by('#graph g[data-node]', 'node', (el) => el.dataset.reachable),
      links: by('#graph g[data-link]', 'link', (el) => el.dataset.state),
      linkText: by('#graph g[data-link]', 'link', (el) => el.textContent ?? ''),
      documents: docs.length,
      agreeing: docs.filter((row) => row.dataset.agree === 'true').length,
    }
  })

/** Polls the page until `check` holds of what it shows; fails with the last view past 30 s. */
async function untilPageShows(page: Page, what: string, check: (view: Seen) => boolean) {
  let last: Seen | undefined
  try {
    return await waitFor(
      what,
      async () => {
        last = await seen(page)
        return check(last) ? last : undefined
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
  } catch (error) {
    throw new Error(`${String(error)}\nthe page shows ${JSON.stringify(last)}`)
  }
}

async function admitted(mesh: Mesh, node: string, path: string, body: object) {
  const reply = await mesh.client(node).admin('POST', path, body)
  expect(reply.status, JSON.stringify(reply.body)).toBe(201)
}

describe('the dashboard shows the mesh, a partition and the heal', () => {
  let mesh: Mesh
  let browser: Browser
  let page: Page

  beforeAll(async () => {
    expect(existsSync(chromium), `Chromium at ${chromium} (apt-get install -y chromium)`).toBe(true)
    ;[mesh, browser] = await Promise.all([
      startMesh({ ids: ['a', 'b', 'c'], proxied: true }),
      puppeteer.launch({
        executablePath: chromium,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      }),
    ])
    page = await browser.newPage()
    await page.setViewport({ width: 1100, height: 900 })
  })

  afterAll(async () => {
    await browser?.close()
    await mesh?.stop()
  })

  it('asks for the token, then shows three nodes with every link up', async () => {
    const url = `${mesh.node('a').url()}/dashboard`
    const response = await page.goto(url)
    expect(response?.status()).toBe(200)
    // The page itself is public and holds no data: nothing shows before the token is given.
    expect(await page.$eval('#board', (board) => (board as any).hidden)).toBe(true)
    await page.type('#token', 'not-the-token')
    await page.click('#login button[type=submit]')
    await page.waitForFunction(
      () =>
        (globalThis as any).document.querySelector('#login-error').textContent.includes('refused'),
      { timeout: 10_000 },
    )
    await page.type('#token', mesh.adminToken)
    await page.click('#login button[type=submit]')
    const view = await untilPageShows(
      page,
      'three reachable nodes, links up, documents agreeing',
      (v) =>
        Object.values(v.nodes).filter((r) => r === 'true').length === 3 &&
        ['a-b', 'a-c', 'b-c'].every((link) => v.links[link] === 'up') &&
        v.documents > 0 &&
        v.agreeing === v.documents,
    )
    expect(Object.keys(view.nodes).sort()).toEqual(['a', 'b', 'c'])
    // The token lives in the tab's sessionStorage, never in the URL.
    expect(page.url()).toBe(url)
    const kept = () => (globalThis as any).sessionStorage.getItem('clearmesh.adminToken')
    expect(await page.evaluate(kept)).toBe(mesh.adminToken)
  })

  it("shows c unreachable and c's links down while c is isolated", async () => {
    mesh.isolate('c')
    // Both sides keep taking writes: the documents agree again only once c's have reached a and b.
    for (const [node, accountId] of [
      ['a', 'dash-a'],
      ['c', 'dash-c'],
    ] as const) {
      await admitted(mesh, node, '/v1/admin/accounts', { accountId })
      await admitted(mesh, node, '/v1/admin/deposits', {
        depositId: `${accountId}-1`,
        accountId,
        asset: 'USD',
        amount: '10',
        signedAt: Date.now(),
      })
    }
    const view = await untilPageShows(
      page,
      'c unreachable, a-c and b-c down, a-b up',
      (v) =>
        v.nodes.c === 'false' &&
        v.links['a-c'] === 'down' &&
        v.links['b-c'] === 'down' &&
        v.links['a-b'] === 'up',
    )
    expect(view.nodes).toEqual({ a: 'true', b: 'true', c: 'false' })
    expect(view.linkText['a-c']).toMatch(/^down/)
    expect(await page.$eval('#nodes tr[data-node="c"]', (row) => row.textContent)).toContain(
      'unreachable',
    )
    await page.screenshot({ path: screenshot, fullPage: true })
    // GET /metrics says the same of a's links.
    const metrics = String((await mesh.client('a').admin('GET', '/metrics')).body)
    for (const doc of ['shard/0', 'market/BTC-PERP']) {
      expect(metrics).toContain(`clearmesh_link_up{doc="${doc}",peer="b"} 1\n`)
      expect(metrics).toContain(`clearmesh_link_up{doc="${doc}",peer="c"} 0\n`)
    }
  })

  it('shows every link up and every document agreeing again after the heal', async () => {
    mesh.healAll()
    const view = await untilPageShows(
      page,
      'all reachable, links up, documents agreeing after the heal',
      (v) =>
        Object.values(v.nodes).every((r) => r === 'true') &&
        ['a-b', 'a-c', 'b-c'].every((link) => v.links[link] === 'up') &&
        v.agreeing === v.documents,
    )
    expect(view.nodes).toEqual({ a: 'true', b: 'true', c: 'true' })
    // What the page says agrees with the nodes themselves.
    await mesh.converge('after heal', { timeoutMs: 10_000 })
  })
})
