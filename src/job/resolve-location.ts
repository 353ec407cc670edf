// Where a location resolves is storage's to say; kept here only until src/engine imports it from there.
export { resolveLocation } from '../storage/location.js';
