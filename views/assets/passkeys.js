// Tally's passkey forms (a static file: the pages' Content-Security-Policy allows no inline script).
// A form marked data-passkey="register" or "authenticate" is shown only where WebAuthn works; on submit
// it asks data-challenge for the WebAuthn options and a ticket (the challenge, bound server-side to this
// session), runs the browser's ceremony (@simplewebauthn/browser, /assets/webauthn.js), puts the answer
// in its hidden fields and posts itself. Everything else on the pages works without this script.
(() => {
  const webauthn = globalThis.SimpleWebAuthnBrowser;
  if (!webauthn?.browserSupportsWebAuthn()) return;

  const explain = (error) => {
    if (error?.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out. Try again.';
    if (error?.name === 'InvalidStateError') return 'This passkey is already registered.';
    return 'The passkey did not work. Try again.';
  };

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    form.hidden = false;
    const status = form.querySelector('.passkey-status');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (status) status.textContent = '';
      try {
        const body = new URLSearchParams();
        for (const [name, value] of new FormData(form)) if (name !== 'passkey_response' && name !== 'challenge_ticket') body.append(name, String(value));
        const answer = await fetch(form.dataset.challenge, { method: 'POST', body, credentials: 'same-origin', headers: { accept: 'application/json' } });
        if (!answer.ok) throw new Error(`challenge: ${answer.status}`);
        const { options, challenge_ticket: ticket } = await answer.json();
        const result =
          form.dataset.passkey === 'register'
            ? await webauthn.startRegistration({ optionsJSON: options })
            : await webauthn.startAuthentication({ optionsJSON: options });
        form.elements.passkey_response.value = JSON.stringify(result);
        form.elements.challenge_ticket.value = ticket;
        HTMLFormElement.prototype.submit.call(form);
      } catch (error) {
        if (status) status.textContent = explain(error);
      }
    });
  }
})();
