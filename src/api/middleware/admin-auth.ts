import type { MiddlewareHandler } from 'hono'
import { ApiError } from '../api-error'
import type { AppEnv } from '../app-env'
import { constantTimeEqual } from '../../hmac'

/**
 * Admits only requests bearing the operator's admin token.
 *
 * @example
 * app.use('/v1/admin/*', adminAuth())
 */
export const adminAuth = (): MiddlewareHandler<AppEnv> =>
  async function adminAuth(c, next) {
    const header = c.req.header('Authorization') ?? ''
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    const token = /^bearer /i.test(header) ? header.slice('bearer '.length) : ''
    if (token === '') {
      throw new ApiError(
        401,
        'missing_admin_token',
        'send the admin token as "Authorization: Bearer <token>"',
      )
    }
    if (!constantTimeEqual(token, c.var.config.adminToken)) {
      throw new ApiError(401, 'invalid_admin_token', 'the admin token is not valid')
    }
    await next()
  }
