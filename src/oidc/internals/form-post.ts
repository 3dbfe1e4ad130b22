import type Provider from 'oidc-provider';

/** How oidc-provider's form_post page (response_modes/form_post.js) begins, up to its one inline script. */
const FORM_POST_HEAD = `<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge">
  <title>Submitting Callback</title>
  <script>`;

/**
 * oidc-provider writes a self-submitting page (response_modes/form_post.js) for the form_post response
 * mode and, importing it directly, for logout without a session and for the device flow's steps; it
 * allows its inline script by adding the script's hash to the response's script-src. Every page of
 * Tally's allows only scripts carrying the response's nonce: the page's script is given the nonce, and
 * the hash is taken out again. Only the page's fixed head is touched (its inputs are escaped by
 * oidc-provider and cannot hold a tag), so no other script can ever receive the nonce.
 */
export function installNoncedFormPost(provider: Provider, nonceOf: (res: unknown) => string | undefined): void {
  provider.use(async (ctx, next) => {
    await next();
    if (typeof ctx.body !== 'string' || !ctx.body.startsWith(FORM_POST_HEAD)) return;
    const nonce = nonceOf(ctx.res);
    if (!nonce) return;
    ctx.body = `${FORM_POST_HEAD.slice(0, -1)} nonce="${nonce}">${ctx.body.slice(FORM_POST_HEAD.length)}`;
    const policy = ctx.response.get('content-security-policy');
    if (policy) ctx.set('content-security-policy', policy.replace(/ 'sha256-[A-Za-z0-9+/=]+'/g, ''));
  });
}
