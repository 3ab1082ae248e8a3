/** Crypto helpers plugins may import: SM4 (GM/T 0002) and the provincial gateway signature. */
export { sm4EncryptHex, sm4DecryptHex, sm4Encrypt, sm4Decrypt, sm4Backend, parseSm4Key, opensslSm4, smCryptoSm4, type Sm4Impl } from './sm4.js';
export { gatewayHeaders, gatewaySignature, verifyGatewaySignature, newNonce, type GatewayHeaderOptions } from './signature.js';
