// pki.js - a throwaway certificate authority and server certificates for the
// TLS tests (tests/integration/tls.test.js, the browser tests' TLS mode in
// tests/e2e/harness.mjs), made with the openssl command at test time in a
// temporary directory: nothing here is checked in, nothing outlives the run.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasOpenssl() {
  try {
    openssl(['version']);
    return true;
  } catch {
    return false;
  }
}

// A CA (EC P-256, 2 days) in dir: {dir, caCert, caKey}.
export function makeCa(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKey = path.join(dir, 'ca-key.pem');
  const caCert = path.join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey,
    '-out', caCert, '-days', '2', '-subj', '/CN=attune test CA (throwaway)',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { dir, caCert, caKey };
}

// A server certificate for 127.0.0.1 and localhost signed by ca, with a new
// key, written to certPath and keyPath (the key 0600). serial: hex digits.
// Returns {cert, key, serial, spki} (spki: base64 SHA-256 of the public key's
// SubjectPublicKeyInfo, as Chromium's --ignore-certificate-errors-spki-list
// takes it).
export function issueServerCert(ca, { serial, certPath, keyPath, name = 'server' }) {
  const csr = path.join(ca.dir, `${name}.csr`);
  const ext = path.join(ca.dir, `${name}.ext`);
  const newKey = path.join(ca.dir, `${name}-new-key.pem`);
  const newCert = path.join(ca.dir, `${name}-new-cert.pem`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', newKey,
    '-out', csr, '-subj', '/CN=localhost']);
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n' +
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey, '-set_serial', `0x${serial}`,
    '-days', '2', '-extfile', ext, '-out', newCert]);
  // Into place key first, each by rename, as a certificate tool would.
  fs.chmodSync(newKey, 0o600);
  fs.renameSync(newKey, keyPath);
  fs.renameSync(newCert, certPath);
  const x509 = new crypto.X509Certificate(fs.readFileSync(certPath));
  const spki = crypto.createHash('sha256').update(x509.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  return { cert: certPath, key: keyPath, serial: x509.serialNumber, spki };
}
