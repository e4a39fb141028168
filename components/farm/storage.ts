/**
 * Where a farm's nodes pull their deploy from: a private S3 bucket (all public access blocked,
 * bucket-owner objects only, TLS-only, versioned) encrypted with the farm's own KMS key. The plan
 * (it holds every secret of the mirror) and the daemon bundle are objects under the farm's
 * prefix, named by their sha256, so a new plan is a new object (and a new digest for the SSM
 * association and the launch template) and a node can never read a half-replaced one.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { sha256, stableBundle } from "../deploy/bundleAsset";

export interface FarmStorageInput {
  name: string;
  domainName: string;
  /** The serialized plan (secret). */
  planJson: pulumi.Output<string>;
  bundlePath: string;
  tags: Record<string, string>;
  parent: pulumi.Resource;
}

/** Where a release (the daemon bundle and the plan) is, and the digests a node checks it by. */
export interface ReleasePointers {
  bundleUrl: pulumi.Input<string>;
  bundleSha256: pulumi.Input<string>;
  planUrl: pulumi.Input<string>;
  planSha256: pulumi.Input<string>;
}

export interface FarmStorage {
  key: aws.kms.Key;
  bucket: aws.s3.Bucket;
  /** The farm's prefix in the bucket ("farm/<name>/"): the node role reads only under it. */
  prefix: string;
  planObject: aws.s3.BucketObjectv2;
  bundleObject: aws.s3.BucketObjectv2;
  planSha256: pulumi.Output<string>;
  bundleSha256: string;
  planUrl: pulumi.Output<string>;
  bundleUrl: pulumi.Output<string>;
}

/** The object keys, content-addressed (pure). */
export function objectKeys(prefix: string, planSha: string, bundleSha: string): { plan: string; bundle: string } {
  return { plan: `${prefix}plan/${planSha}.json`, bundle: `${prefix}bundle/${bundleSha}.js` };
}

export function createFarmStorage(i: FarmStorageInput): FarmStorage {
  const { name, parent, tags } = i;
  const prefix = `farm/${name}/`;
  const key = new aws.kms.Key(
    `${name}-farm-key`,
    { description: `smart-mirror farm ${i.domainName}: deploy plan and bundle`, enableKeyRotation: true, deletionWindowInDays: 30, tags },
    { parent },
  );
  const bucket = new aws.s3.Bucket(`${name}-farm-bucket`, { bucketPrefix: "smart-mirror-farm-", forceDestroy: true, tags }, { parent });
  const publicBlock = new aws.s3.BucketPublicAccessBlock(
    `${name}-farm-bucket-private`,
    { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    { parent },
  );
  new aws.s3.BucketOwnershipControls(`${name}-farm-bucket-owner`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, { parent });
  const versioning = new aws.s3.BucketVersioning(`${name}-farm-bucket-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, { parent });
  const encryption = new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-farm-bucket-encryption`,
    { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key.arn }, bucketKeyEnabled: true }] },
    { parent },
  );
  new aws.s3.BucketPolicy(
    `${name}-farm-bucket-tls-only`,
    {
      bucket: bucket.id,
      policy: bucket.arn.apply((arn) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Sid: "TlsOnly", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [arn, `${arn}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } }],
        }),
      ),
    },
    { parent, dependsOn: [publicBlock] },
  );
  // Replaced plans stay as noncurrent versions for a while (a rollback can read them), then go.
  new aws.s3.BucketLifecycleConfiguration(
    `${name}-farm-bucket-lifecycle`,
    { bucket: bucket.id, rules: [{ id: "old-deploys", status: "Enabled", filter: { prefix }, noncurrentVersionExpiration: { noncurrentDays: 30 }, expiration: { expiredObjectDeleteMarker: true } }] },
    { parent, dependsOn: [versioning] },
  );

  // The digest of the plan is not secret (a one-way hash of a document holding random keys):
  // it names the object, travels in the launch template and the association's parameters,
  // and shows in previews, so a plan change is visible as such.
  const planSha256 = pulumi.unsecret(i.planJson.apply(sha256));
  const { sha: bundleSha256, assetPath } = stableBundle(i.bundlePath);
  const after = { parent, dependsOn: [encryption, versioning, publicBlock] };
  const encrypted = { serverSideEncryption: "aws:kms", kmsKeyId: key.arn, bucketKeyEnabled: true };
  const planObject = new aws.s3.BucketObjectv2(
    `${name}-farm-plan`,
    { bucket: bucket.id, key: planSha256.apply((s) => objectKeys(prefix, s, bundleSha256).plan), content: pulumi.secret(i.planJson), contentType: "application/json", ...encrypted, tags },
    after,
  );
  const bundleObject = new aws.s3.BucketObjectv2(
    `${name}-farm-bundle`,
    { bucket: bucket.id, key: objectKeys(prefix, "", bundleSha256).bundle, source: new pulumi.asset.FileAsset(assetPath), contentType: "application/javascript", ...encrypted, tags },
    after,
  );
  return {
    key,
    bucket,
    prefix,
    planObject,
    bundleObject,
    planSha256,
    bundleSha256,
    planUrl: pulumi.interpolate`s3://${bucket.bucket}/${planObject.key}`,
    bundleUrl: pulumi.interpolate`s3://${bucket.bucket}/${bundleObject.key}`,
  };
}
