/**
 * The mirror's TLS certificate, three ways. Each yields the same material for nginx: the
 * certificate chain (leaf first) and its private key, the key always as a secret.
 *
 * - acme: @pulumiverse/acme (the maintained bridge of the vancluever/acme Terraform provider;
 *   its plugin is fetched by the Pulumi CLI at deploy time, nothing at npm install). DNS-01 on
 *   Route53, so the host needs no open port 80 and nothing runs before the host exists.
 *   Renewal happens on `pulumi up` once fewer than minDaysRemaining days are left: run the
 *   stack on a schedule (e.g. weekly CI) — a new certificate changes the plan, which reloads nginx.
 * - provided: PEM from elsewhere.
 * - privateCa: @pulumi/tls CA + server certificate (re-issued by `pulumi up` 30 days before
 *   it ends); the CA certificate is an output for clients to trust.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import * as acme from "@pulumiverse/acme";
import type { TlsKindArgs } from "../args";

export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";

export interface TlsMaterial {
  /** Leaf first, then intermediates (nginx ssl_certificate). */
  certificateChainPem: pulumi.Output<string>;
  /** Secret. */
  privateKeyPem: pulumi.Output<string>;
  /** privateCa only: what clients must trust. */
  caCertificatePem?: pulumi.Output<string>;
}

export interface TlsContext {
  /** Component name: every child is named `${name}-...`. */
  name: string;
  /** The certificate's names: domainName first, then the global name if any. */
  dnsNames: string[];
  /** Route53 zone for DNS-01 (from dns.zoneId) when tls.zoneId is not set. */
  zoneId?: pulumi.Input<string>;
  /** The component's region arg, else the stack's aws:region: the ACME solver's AWS_REGION. */
  region?: string;
  parent: pulumi.Resource;
}

/** Route53 is global, but lego's route53 solver still needs a region to start its AWS client. */
export const ACME_FALLBACK_REGION = "us-east-1";

/**
 * The settings of lego's route53 solver. lego reads its AWS region only from its own config
 * or environment (AWS_REGION), never from the stack's aws:region (terraform-provider-acme
 * #337): without one, certificate creation fails. An AWS_REGION the user set wins.
 */
export function route53SolverConfig(user: Record<string, pulumi.Input<string>> | undefined, zoneId: pulumi.Input<string>, region: string | undefined): Record<string, pulumi.Input<string>> {
  return { AWS_REGION: region ?? ACME_FALLBACK_REGION, ...(user ?? {}), AWS_HOSTED_ZONE_ID: zoneId };
}

/** PEM blocks joined with exactly one newline between them and one at the end. */
export function joinPem(...parts: Array<string | undefined>): string {
  return (
    parts
      .filter((p): p is string => p !== undefined && p.trim() !== "")
      .map((p) => p.trim())
      .join("\n") + "\n"
  );
}

export function createTls(args: TlsKindArgs, ctx: TlsContext): TlsMaterial {
  const { name, parent, dnsNames } = ctx;
  switch (args.kind) {
    case "provided":
      return {
        certificateChainPem: pulumi.all([args.certificatePem, args.chainPem]).apply(([cert, chain]) => joinPem(cert, chain)),
        privateKeyPem: pulumi.secret(pulumi.output(args.privateKeyPem)),
      };
    case "privateCa": {
      const org = args.organization ?? "smart-mirror";
      const caKey = new tls.PrivateKey(`${name}-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
      const caCert = new tls.SelfSignedCert(
        `${name}-ca-cert`,
        {
          privateKeyPem: caKey.privateKeyPem,
          isCaCertificate: true,
          subject: { commonName: `${org} mirror CA (${dnsNames[0]})`, organization: org },
          validityPeriodHours: 10 * 365 * 24,
          allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        },
        { parent },
      );
      const key = new tls.PrivateKey(`${name}-tls-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
      const csr = new tls.CertRequest(`${name}-tls-csr`, { privateKeyPem: key.privateKeyPem, subject: { commonName: dnsNames[0], organization: org }, dnsNames }, { parent });
      const cert = new tls.LocallySignedCert(
        `${name}-tls-cert`,
        {
          certRequestPem: csr.certRequestPem,
          caPrivateKeyPem: caKey.privateKeyPem,
          caCertPem: caCert.certPem,
          validityPeriodHours: (args.validityDays ?? 365) * 24,
          earlyRenewalHours: 30 * 24,
          allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        },
        { parent },
      );
      return {
        certificateChainPem: cert.certPem.apply((c) => joinPem(c)),
        privateKeyPem: pulumi.secret(key.privateKeyPem),
        caCertificatePem: caCert.certPem,
      };
    }
    case "acme": {
      const zoneId = args.zoneId ?? ctx.zoneId;
      if (zoneId === undefined) throw new Error("tls acme: no Route53 zone (validation should have caught this)");
      // Its own provider, so the directory URL is explicit per mirror and never comes from
      // whatever acme:serverUrl the surrounding stack might have configured.
      const provider = new acme.Provider(`${name}-acme`, { serverUrl: args.serverUrl ?? LETS_ENCRYPT_PRODUCTION }, { parent });
      const accountKey = new tls.PrivateKey(`${name}-acme-account-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
      const registration = new acme.Registration(`${name}-acme-account`, { accountKeyPem: accountKey.privateKeyPem, emailAddress: args.email }, { parent, provider });
      const cert = new acme.Certificate(
        `${name}-cert`,
        {
          accountKeyPem: registration.accountKeyPem,
          commonName: dnsNames[0],
          subjectAlternativeNames: dnsNames.slice(1),
          keyType: "P256",
          minDaysRemaining: args.minDaysRemaining ?? 30,
          dnsChallenges: [{ provider: "route53", config: pulumi.all(route53SolverConfig(args.route53Config, zoneId, ctx.region)) }],
        },
        { parent, provider },
      );
      return {
        certificateChainPem: pulumi.all([cert.certificatePem, cert.issuerPem]).apply(([leaf, issuer]) => joinPem(leaf, issuer)),
        privateKeyPem: pulumi.secret(cert.privateKeyPem),
      };
    }
  }
}
