import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (apt-get install chromium); tests that need it skip, saying so, without it. */
export const CHROMIUM = '/usr/bin/chromium';

export const chromiumSkipReason = (): string | undefined =>
  existsSync(CHROMIUM) ? undefined : `Chromium not installed (apt-get install chromium): ${CHROMIUM} does not exist`;

/** Headless Chromium as the page tests drive it: no sandbox (containers), nothing fetched in the background. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
