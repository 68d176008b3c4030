import { describe, expectTypeOf, it } from 'vitest'
import {
  CorruptEntryError,
  type errors,
  type InvalidOptionError,
  isStockpyleError,
  KeyConflictError,
  type LayerSkippedError,
  type PartialFailureError,
  type SkipReason,
  type StockpyleError,
  type StockpyleErrorCode,
  type StoreEntry,
  type StoreUnavailableError,
} from '../../src/index.js'

declare const err: unknown

describe('error types', () => {
  it('isStockpyleError(err, code) narrows to the class of that code', () => {
    if (isStockpyleError(err, 'E_LAYER_SKIPPED')) {
      expectTypeOf(err).toExtend<LayerSkippedError>()
      expectTypeOf(err.reason).toEqualTypeOf<SkipReason>()
      expectTypeOf(err.code).toEqualTypeOf<'E_LAYER_SKIPPED'>()
    }
    if (isStockpyleError(err, 'E_KEY_CONFLICT')) {
      expectTypeOf(err).toExtend<KeyConflictError>()
      const code: 'E_KEY_CONFLICT' = err.code
      void code
    }
    if (isStockpyleError(err, 'E_STORE_UNAVAILABLE')) expectTypeOf(err).toExtend<StoreUnavailableError>()
    if (isStockpyleError(err, 'E_STOCKPYLE')) expectTypeOf(err.code).toEqualTypeOf<'E_STOCKPYLE'>()
    if (isStockpyleError(err, 'E_CORRUPT_ENTRY')) {
      expectTypeOf(err.failed).toEqualTypeOf<readonly number[] | undefined>()
      expectTypeOf(err.results).toEqualTypeOf<readonly unknown[] | undefined>()
    }
    expectTypeOf(new CorruptEntryError<StoreEntry>('m').results).toEqualTypeOf<readonly (StoreEntry | undefined)[] | undefined>()
  })

  it('without a code (or with one only known at run time) it narrows to StockpyleError', () => {
    if (isStockpyleError(err)) {
      expectTypeOf(err).toExtend<StockpyleError>()
      expectTypeOf(err.code).toEqualTypeOf<StockpyleErrorCode>()
    }
    const code = 'E_SCHEMA' as StockpyleErrorCode | undefined
    if (isStockpyleError(err, code)) expectTypeOf(err).toExtend<StockpyleError>()
    const either = 'E_SCHEMA' as 'E_SCHEMA' | 'E_KEY_CONFLICT'
    if (isStockpyleError(err, either)) expectTypeOf(err.code).toEqualTypeOf<'E_SCHEMA' | 'E_KEY_CONFLICT'>()
  })

  it('a code that does not exist is a compile error', () => {
    // @ts-expect-error misspelt code
    isStockpyleError(err, 'E_KEY_CONFLICTS')
  })

  it("each class's code is its literal, also on instances and through errors[code]", () => {
    expectTypeOf<KeyConflictError['code']>().toEqualTypeOf<'E_KEY_CONFLICT'>()
    expectTypeOf<InvalidOptionError['code']>().toEqualTypeOf<'E_INVALID_OPTION'>()
    expectTypeOf<PartialFailureError['code']>().toEqualTypeOf<'E_STORE_UNAVAILABLE'>()
    expectTypeOf<InstanceType<(typeof errors)['E_SCHEMA']>['code']>().toEqualTypeOf<'E_SCHEMA'>()
    expectTypeOf<typeof KeyConflictError.code>().toEqualTypeOf<'E_KEY_CONFLICT'>()
    // the base class may be any of them
    expectTypeOf<StockpyleError['code']>().toEqualTypeOf<StockpyleErrorCode>()
    if (err instanceof KeyConflictError) {
      const code: 'E_KEY_CONFLICT' = err.code
      void code
    }
  })
})
