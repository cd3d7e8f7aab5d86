"""tlsfix.py — a throw-away PKI for the TLS integration tests, made with the openssl
command line at test time (nothing is committed).

``make_pki(directory) -> Pki`` writes, with EC P-256 keys:

* ``ca``: the test CA (``ca.pem``/``ca.key``), run with ``openssl ca`` and a minimal
  config so that it can revoke and issue a CRL (``crl.pem``, revoking ``revoked``);
* ``rogue_ca``: a second CA the relay does not trust;
* server certificates from ``ca``: ``server`` (SAN IP:127.0.0.1, DNS:localhost) and
  ``alt`` (SAN DNS:alt.test) for SNI;
* client certificates (extendedKeyUsage clientAuth) from ``ca`` unless noted:

  ========= ==========================================================================
  agent     SAN URI urn:bbf:usp:id:os::00256D-tls1
  ctrl      SAN URI urn:bbf:usp:id:self::tls-ctrl
  two       SAN URIs urn:bbf:usp:id:os::00256D-two1 and urn:bbf:usp:id:self::tls-two2
  nosan     no SAN, subject CN=device-42
  rogue     SAN URI urn:bbf:usp:id:os::00256D-rogue, signed by rogue_ca
  expired   SAN URI urn:bbf:usp:id:os::00256D-expired, valid 2020-01-01 .. 2021-01-01
  revoked   SAN URI urn:bbf:usp:id:os::00256D-revoked, revoked in crl.pem
  agent2    SAN URI urn:bbf:usp:id:os::00256D-tls2 (a second valid agent)
  ========= ==========================================================================

``Pki.cert(name)`` / ``Pki.key(name)`` are file paths (str); ``Pki.eids[name]`` the
endpoint IDs each client certificate names; ``Pki.client_context(name=None, ...)`` an
``ssl.SSLContext`` that trusts ``ca`` for the relay's certificate and presents NAME's
certificate (none when NAME is None).
"""

import ssl
import subprocess
from pathlib import Path

CLIENT_EIDS = {
    "agent": ["os::00256D-tls1"],
    "ctrl": ["self::tls-ctrl"],
    "two": ["os::00256D-two1", "self::tls-two2"],
    "nosan": [],
    "rogue": ["os::00256D-rogue"],
    "expired": ["os::00256D-expired"],
    "revoked": ["os::00256D-revoked"],
    "agent2": ["os::00256D-tls2"],
}
NOSAN_CN = "device-42"
ALT_NAME = "alt.test"
URI_PREFIX = "urn:bbf:usp:id:"

_CA_CONF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/{name}.pem
private_key = $dir/{name}.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no
[ any_name ]
commonName = supplied
"""


def _run(*args, cwd=None):
    p = subprocess.run(["openssl"] + [str(a) for a in args], cwd=cwd, capture_output=True,
                       timeout=30)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s%s" % (" ".join(map(str, args)),
                                                       p.stdout.decode(errors="replace"),
                                                       p.stderr.decode(errors="replace")))
    return p.stdout


class _Ca:
    """A CA run with `openssl ca` in its own directory."""

    def __init__(self, root, name, cn):
        self.dir = root / (name + "-db")
        (self.dir / "issued").mkdir(parents=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "crlnumber").write_text("1000\n")
        self.conf = self.dir / "ca.cnf"
        self.conf.write_text(_CA_CONF.format(dir=self.dir, name=name))
        self.cert = self.dir / (name + ".pem")
        self.key = self.dir / (name + ".key")
        _run("req", "-x509", "-new", "-config", self.conf, "-extensions", "v3_ca",
             "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-subj", "/CN=" + cn, "-days", "3650",
             "-sha256")

    def issue(self, root, name, subject, ext, *, start=None, end=None):
        """Key and certificate NAME (files in ROOT) with SUBJECT and the extension lines
        EXT; START/END ("YYYYMMDDHHMMSSZ") for other validity than now .. +365 days."""
        key, csr, cert = root / (name + ".key"), root / (name + ".csr"), root / (name + ".pem")
        extf = root / (name + ".ext")
        extf.write_text("[ ext ]\n" + "\n".join(ext) + "\n")
        _run("req", "-new", "-config", self.conf, "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        args = ["ca", "-batch", "-config", self.conf, "-notext", "-in", csr, "-out", cert,
                "-extfile", extf, "-extensions", "ext"]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        _run(*args)
        return cert, key

    def revoke(self, cert):
        _run("ca", "-config", self.conf, "-revoke", cert)

    def gencrl(self, out):
        _run("ca", "-config", self.conf, "-gencrl", "-out", out)


def _client_ext(eids):
    ext = ["basicConstraints = critical,CA:FALSE",
           "keyUsage = critical,digitalSignature",
           "extendedKeyUsage = clientAuth"]
    if eids:
        ext.append("subjectAltName = " + ",".join("URI:" + URI_PREFIX + e for e in eids))
    return ext


def _server_ext(san):
    return ["basicConstraints = critical,CA:FALSE",
            "keyUsage = critical,digitalSignature",
            "extendedKeyUsage = serverAuth",
            "subjectAltName = " + san]


class Pki:
    def __init__(self, root):
        self.root = Path(root)
        self.files = {}
        self.eids = dict(CLIENT_EIDS)

    def cert(self, name):
        return str(self.files[name][0])

    def key(self, name):
        return str(self.files[name][1])

    @property
    def ca(self):
        return self.cert("ca")

    @property
    def rogue_ca(self):
        return self.cert("rogue_ca")

    @property
    def crl(self):
        return str(self.root / "crl.pem")

    @property
    def crl_empty(self):
        """A current CRL of the test CA revoking nothing."""
        return str(self.root / "crl-empty.pem")

    def client_context(self, name=None, *, max_version=None, min_version=None,
                       cafile=None, check_hostname=True):
        """A client SSLContext trusting the test CA (or CAFILE) for the server and
        presenting NAME's certificate and key (none when NAME is None)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile or self.ca)
        ctx.check_hostname = check_hostname
        if name is not None:
            ctx.load_cert_chain(self.cert(name), self.key(name))
        if max_version is not None:
            ctx.maximum_version = max_version
        if min_version is not None:
            ctx.minimum_version = min_version
        return ctx

    def server_tls(self, *, client_certs="required", crl=False, **more):
        """A listener `tls` group with the default server certificate; CA and client
        certificate checking as CLIENT_CERTS says; CRL True: the test CA's CRL, a str: that
        file; MORE added as given (None drops)."""
        g = {"certificate": self.cert("server"), "key": self.key("server"),
             "client_certs": client_certs}
        if client_certs != "none":
            g["ca"] = self.ca
        if crl:
            g["crl"] = crl if isinstance(crl, str) else self.crl
        g.update(more)
        return {k: v for k, v in g.items() if v is not None}


def make_pki(root):
    """Generate the whole PKI under ROOT (a directory) and return a Pki."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    ca = _Ca(root, "ca", "usprelay test CA")
    rogue = _Ca(root, "rogue_ca", "usprelay untrusted CA")
    pki.files["ca"] = (ca.cert, ca.key)
    pki.files["rogue_ca"] = (rogue.cert, rogue.key)
    pki.files["server"] = ca.issue(root, "server", "/CN=usprelay test server",
                                   _server_ext("IP:127.0.0.1,DNS:localhost"))
    pki.files["alt"] = ca.issue(root, "alt", "/CN=" + ALT_NAME,
                                _server_ext("DNS:" + ALT_NAME))
    for name, eids in CLIENT_EIDS.items():
        issuer = rogue if name == "rogue" else ca
        cn = NOSAN_CN if name == "nosan" else "tls-client-" + name
        kw = {}
        if name == "expired":
            kw = {"start": "20200101000000Z", "end": "20210101000000Z"}
        pki.files[name] = issuer.issue(root, name, "/CN=" + cn, _client_ext(eids), **kw)
    ca.gencrl(root / "crl-empty.pem")
    ca.revoke(pki.files["revoked"][0])
    ca.gencrl(root / "crl.pem")
    return pki


def san_of(peercert):
    """The subjectAltName of ssl.SSLSocket.getpeercert() as [(type, value)]."""
    return list(peercert.get("subjectAltName", ()))
