import { generateKeyPair } from "@libp2p/crypto/keys";
import { Libp2pTransport } from "../../src/mesh/libp2p-transport.ts";
import { MemoryTransport } from "../../src/mesh/memory-transport.ts";
import { transportCompliance } from "./transport-compliance.ts";

transportCompliance({ name: "memory", create: async () => new MemoryTransport() });
transportCompliance({
  name: "libp2p",
  create: async () => Libp2pTransport.create({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"] }),
});
