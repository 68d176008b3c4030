export {
  type BusConformanceBusOptions,
  type BusConformanceOptions,
  type BusOutage,
  cacheIn,
  runBusConformance,
  twoProcesses,
} from './bus-conformance.js'
export { makeCar, makeUser } from './cases/fixtures.js'
export {
  type CaseContext,
  type ConformanceCase,
  type ConformanceOptions,
  type ConformanceStoreOptions,
  type ConformanceTarget,
  conformanceGroups,
  runConformanceCase,
  runStoreConformance,
} from './conformance.js'
export { type FaultOperation, FaultStore } from './fault-store.js'
export { LocalBusHub } from './local-bus.js'
export { ManualClock } from './manual-clock.js'
export { MapBackend } from './map-backend.js'
export {
  ConformanceCar,
  type ConformanceColumn,
  ConformanceDoc,
  type ConformanceTable,
  ConformanceUser,
  ConformanceVehicle,
  conformanceTables,
} from './models.js'
