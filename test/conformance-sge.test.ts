import { conformance } from './conformance.js';

conformance('sge');
