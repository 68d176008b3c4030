import { ConformanceCar, ConformanceUser } from '../models.js'

/** A fully populated user; `id` decides every key value. */
export function makeUser(id: number): ConformanceUser {
  const user = new ConformanceUser(id, `user${id}@example.com`, 1 + (id % 3), `slug ${id} ü|=`)
  user.name = `Ünïcode "name" ${id} | = ; DROP TABLE`
  user.createdAt = new Date(Date.UTC(2024, 0, 1, 12, 0, 0, 123) + id)
  user.tags = ['a', `t${id}`]
  user.balance = 9_007_199_254_740_993n + BigInt(id)
  user.active = id % 2 === 0
  user.meta = { nested: { list: [1, [2, 3], 'x'], when: new Date(86_400_000 * id), big: 12345678901234567890n }, empty: {} }
  user.prefs = new Map([
    ['theme', 1],
    ['size', id],
  ])
  user.roles = new Set(['reader', `r${id}`])
  user.avatar = Buffer.from([0, 1, 2, 255, id % 256])
  return user
}

/** A car with its own keys (vin) and an inherited attribute. */
export function makeCar(n: number): ConformanceCar {
  const car = new ConformanceCar(`PL-${n}`, `VIN${n}`)
  car.model = `model ${n}`
  car.wheels = 4 + (n % 2)
  return car
}
