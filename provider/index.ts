/**
 * The plugin's entry point: what Pulumi runs for `pulumi package add` and for every stack that
 * uses the package from another language. The nodejs language host starts
 * `node @pulumi/pulumi/cmd/run-plugin <this package's folder> <engine address>`, which loads
 * package.json's `main` (this file); it serves the ResourceProvider gRPC service and prints its
 * port on stdout for the engine. Nothing is exported, so run-plugin does not start a second,
 * generic component host from the exports.
 */
import { main } from "@pulumi/pulumi/provider";
import { SmartMirrorProvider } from "./smartMirrorProvider";

void main(new SmartMirrorProvider(), process.argv.slice(2));
