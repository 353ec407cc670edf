import { conformance } from './conformance.js';

conformance('local');
