/**
 * Test certificates, made with the openssl CLI at test time (no key is ever
 * committed): a CA, a server certificate for 127.0.0.1 / localhost signed by
 * it, a client certificate signed by it, and a self-signed "rogue" client
 * certificate that no listener trusts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TestCerts {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  rogueCert: string;
  rogueKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** Writes the certificates into `dir` (created if missing) and returns their paths. */
export function makeCerts(dir: string): TestCerts {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => path.join(dir, f);
  const days = ['-days', '2'];
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  // CA
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', ...days, '-subj', '/CN=hisbridge test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const sign = (name: string, cn: string, ext: string): void => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    writeFileSync(p(`${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, ...days, '-extfile', `${name}.ext`], dir);
  };
  sign('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  sign('client', 'his-test-client', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  // Rogue: self-signed, same shape as the good client, not signed by the CA.
  openssl(['req', '-x509', ...ec, '-keyout', 'rogue.key', '-out', 'rogue.pem', ...days, '-subj', '/CN=his-test-client',
    '-addext', 'extendedKeyUsage=clientAuth'], dir);
  return {
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue.key'),
  };
}
