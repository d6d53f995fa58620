// The ES module entry: the same objects as require('@serve.zone/containerarchive'),
// so ESM and CommonJS callers share one native engine and one ArchiveError class.
// Loaded through createRequire rather than `import api from './index.js'`: Node 20
// reports an error thrown while loading the CommonJS module (a missing platform
// package) a second time, as an uncaught exception, through a static import.
import { createRequire } from 'node:module';

const api = createRequire(import.meta.url)('./index.js');

export const { ContainerArchive, ArchiveError, AbortError } = api;
export default api;
